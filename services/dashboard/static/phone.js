// The phone page: pair with the token from the QR code's link, stream the camera as JPEG frames over a
// WebSocket, draw the returned faces over the preview, show the last minutes' compliance, keep the screen
// awake, reconnect when the connection drops. Protocol: services/dashboard/phone/stream.py.
"use strict";

(() => {
  const SESSION_KEY = "maskwatch-phone-session";
  const COLORS = { with_mask: "#4bb43c", without_mask: "#e62828", mask_incorrect: "#ff9600" };
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.hash.slice(1)).get("t");
  if (location.hash) history.replaceState(null, "", location.pathname);  // the token leaves the address bar

  const state = {
    session: JSON.parse(localStorage.getItem(SESSION_KEY) || "null"),
    facing: "environment", stream: null, ws: null, timer: null, wakeLock: null, stopped: true,
    seq: 0, sent: new Map(), retry: 0, limits: null, sending: false,
  };
  // read by tests and benchmarks/phone.py
  const metrics = window.maskwatchPhone = { framesSent: 0, bytesSent: 0, results: 0, latencies: [], closes: [], shown: [] };
  const canvas = document.createElement("canvas");

  function setConn(text, kind) {
    $("conn").textContent = text; $("conn").dataset.state = kind;
    metrics.shown.push(text);
    if (metrics.shown.length > 50) metrics.shown.shift();
  }
  function setStatus(text) { $("status").textContent = text; $("status").className = `status ${text}`; }

  if (state.session) {
    $("name").value = state.session.camera.replace(/^phone-/, "");
    $("setup-help").textContent = `This phone was paired as ${state.session.camera}: start to stream again.`;
  } else if (!token) {
    $("setup-help").textContent = "Open this page from the QR code or link of the dashboard's \"Add a phone camera\".";
    $("start").disabled = true;
  }

  async function pair(name) {
    const response = await fetch("/api/v1/phone/pair", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token, name }) });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `pairing failed (${response.status})`);
    state.session = body;
    localStorage.setItem(SESSION_KEY, JSON.stringify(body));
  }

  async function openCamera() {
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    const side = (state.session && state.session.max_side) || 1280;
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: {
      facingMode: { ideal: state.facing }, width: { ideal: side }, height: { ideal: Math.round(side * 9 / 16) } } });
    $("video").srcObject = state.stream;
    await $("video").play().catch(() => {});
  }

  async function keepAwake() {
    if (!("wakeLock" in navigator) || state.stopped || document.visibilityState !== "visible") return;
    try { state.wakeLock = await navigator.wakeLock.request("screen"); } catch (e) { state.wakeLock = null; }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = state.ws = new WebSocket(`${scheme}//${location.host}/api/v1/phone/stream`);
    ws.binaryType = "arraybuffer";
    setConn("connecting…", "connecting");
    ws.onopen = () => ws.send(JSON.stringify({ camera: state.session.camera, secret: state.session.secret }));
    ws.onmessage = (event) => onMessage(JSON.parse(event.data));
    ws.onclose = (event) => onClose(ws, event);
  }

  function onMessage(message) {
    if (message.type === "hello") {
      state.limits = message; state.retry = 0;
      setConn("streaming", "live"); setStatus("live"); $("stream-error").textContent = "";
      startFrames();
    } else if (message.type === "result") {
      metrics.results += 1;
      if (message.seq !== null && state.sent.has(message.seq)) {
        const latency = performance.now() - state.sent.get(message.seq);
        metrics.latencies.push(latency);
        $("latency").textContent = `${Math.round(latency)} ms`;
      }
      drawFaces(message.result);
    } else if (message.type === "compliance") {
      showCompliance(message);
    } else if (message.type === "warning") {
      $("stream-error").textContent = message.detail;
    }
  }

  function onClose(ws, event) {
    if (ws !== state.ws) return;
    metrics.closes.push(event.code);
    clearInterval(state.timer);
    state.timer = null;
    if (state.stopped) return;
    if (event.code === 4401 || event.code === 4403 || event.code === 4400) {
      localStorage.removeItem(SESSION_KEY);
      stop(`refused: ${event.reason || event.code}`);
      return;
    }
    if (event.code === 4409) { stop("another phone took this camera over"); return; }
    const wait = Math.min(10, 2 ** state.retry++);
    setConn(`connection lost – reconnecting in ${wait} s`, "down");
    setStatus("retrying");
    setTimeout(() => { if (!state.stopped) connect(); }, wait * 1000);
  }

  function startFrames() {
    clearInterval(state.timer);
    state.timer = setInterval(sendFrame, 1000 / state.limits.fps);
  }

  function sendFrame() {
    const ws = state.ws, video = $("video");
    // backpressure on the phone: skip a tick while the previous frame is still being encoded or sent
    if (!ws || ws.readyState !== WebSocket.OPEN || state.sending || ws.bufferedAmount > 0 || !video.videoWidth) return;
    const scale = Math.min(1, state.limits.max_side / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    state.sending = true;
    canvas.toBlob(async (blob) => {
      try {
        if (!blob || ws.readyState !== WebSocket.OPEN) return;
        const jpeg = new Uint8Array(await blob.arrayBuffer());
        const message = new Uint8Array(4 + jpeg.length);
        const seq = state.seq = (state.seq + 1) >>> 0;
        new DataView(message.buffer).setUint32(0, seq);
        message.set(jpeg, 4);
        state.sent.set(seq, performance.now());
        if (state.sent.size > 100) state.sent.delete(state.sent.keys().next().value);
        ws.send(message);
        metrics.framesSent += 1; metrics.bytesSent += message.length;
      } finally {
        state.sending = false;
      }
    }, "image/jpeg", state.limits.jpeg_quality / 100);
  }

  function drawFaces(result) {
    const overlay = $("overlay"), video = $("video");
    overlay.width = video.clientWidth; overlay.height = video.clientHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const sx = overlay.width / result.width, sy = overlay.height / result.height;
    const counts = {};
    for (const face of result.faces) {
      if (face.static) continue;
      const label = face.track_label || face.label;
      counts[label] = (counts[label] || 0) + 1;
      const [x1, y1, x2, y2] = face.box;
      ctx.strokeStyle = ctx.fillStyle = COLORS[label] || "#fff";
      ctx.lineWidth = 3;
      ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
      ctx.font = "bold 14px system-ui, sans-serif";
      ctx.fillText(label.replace("_", " "), x1 * sx + 2, Math.max(14, y1 * sy - 4));
    }
    const chips = $("faces");
    chips.replaceChildren(...Object.entries(counts).map(([label, n]) => {
      const chip = document.createElement("span");
      chip.className = "chip"; chip.dataset.label = label; chip.textContent = `${n} ${label.replace("_", " ")}`;
      return chip;
    }));
  }

  function showCompliance(message) {
    const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
    $("minutes").textContent = message.minutes;
    $("compliance").textContent = pct(message.compliance);
    $("people-compliance").textContent = pct(message.people_compliance);
    const faces = Object.values(message.faces).reduce((a, b) => a + b, 0);
    const people = Object.values(message.people).reduce((a, b) => a + b, 0);
    $("stats").textContent = `${faces} faces, ${people} people in the last ${message.minutes} min · ` +
      `${metrics.framesSent} frames, ${Math.round(metrics.bytesSent / 1024)} KiB sent`;
  }

  async function start(event) {
    event.preventDefault();
    $("pair-error").textContent = "";
    try {
      if (token && !state.paired) {
        await pair($("name").value);
        state.paired = true;
      }
      if (!state.session) throw new Error("open this page from the dashboard's QR code to pair");
      state.stopped = false;
      await openCamera();
    } catch (e) {
      state.stopped = true;
      $("pair-error").textContent = e.name === "NotAllowedError" ? "camera permission refused" : e.message;
      return;
    }
    $("setup").hidden = true; $("live").hidden = false;
    $("camera-id").textContent = state.session.camera;
    keepAwake();
    connect();
  }

  function stop(reason) {
    state.stopped = true;
    clearInterval(state.timer);
    if (state.ws) state.ws.close(1000, "stopped on the phone");
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    if (state.wakeLock) state.wakeLock.release().catch(() => {});
    state.wakeLock = null;
    setStatus("stopped");
    setConn(reason || "stopped", reason ? "down" : "idle");
    $("setup").hidden = false;
    if (reason) $("pair-error").textContent = reason;
  }

  $("pair-form").addEventListener("submit", start);
  $("stop").addEventListener("click", () => stop());
  $("switch").addEventListener("click", async () => {
    state.facing = state.facing === "environment" ? "user" : "environment";
    try { await openCamera(); } catch (e) { $("stream-error").textContent = e.message; }
  });
  document.addEventListener("visibilitychange", keepAwake);
  window.addEventListener("pagehide", () => { if (state.ws) state.ws.close(1000, "page closed"); });
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/phone/sw.js", { scope: "/phone/" }).catch(() => {});
})();
