// Shared helpers: optional API key, fetch wrapper, label colours, formatting and the compliance chart.
"use strict";

const Maskwatch = (() => {
  const params = new URLSearchParams(location.search);
  if (params.get("key")) localStorage.setItem("maskwatch-api-key", params.get("key"));
  const apiKey = localStorage.getItem("maskwatch-api-key") || "";
  const LABELS = ["with_mask", "without_mask", "mask_incorrect"];
  // fallbacks only; the server's table (shared/drawing.py) replaces them in loadColors()
  const colors = { with_mask: "#4bb43c", without_mask: "#e62828", mask_incorrect: "#ff9600" };

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (apiKey) headers["X-API-Key"] = apiKey;
    const response = await fetch(path, Object.assign({}, options, { headers }));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
      throw new Error(`${response.status}: ${detail}`);
    }
    return body;
  }

  function withKey(url) {
    if (!apiKey) return url;
    return url + (url.includes("?") ? "&" : "?") + "api_key=" + encodeURIComponent(apiKey);
  }

  async function loadColors() {
    try { Object.assign(colors, (await api("/api/v1/labels")).colors); } catch (e) { /* defaults stay */ }
    for (const [label, color] of Object.entries(colors)) document.documentElement.style.setProperty(`--${label}`, color);
    return colors;
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      // styles through the CSSOM: the Content-Security-Policy blocks inline style attributes
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  // Stacked bars, one per bucket (oldest left): the share of each label among that bucket's faces.
  function drawChart(canvas, buckets) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300, h = canvas.clientHeight || 48;
    canvas.width = w * ratio; canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#eef0f3"; ctx.fillRect(0, 0, w, h);
    const n = buckets.length;
    let bars = 0;
    buckets.forEach((faces, i) => {
      const total = LABELS.reduce((sum, l) => sum + ((faces && faces[l]) || 0), 0);
      if (!total) return;
      const x = (i * w) / n, bw = Math.max(1, w / n - 1);
      let y = h;
      for (const label of LABELS) {
        const part = (faces[label] || 0) / total * h;
        ctx.fillStyle = colors[label]; ctx.fillRect(x, y - part, bw, part);
        y -= part;
      }
      bars += 1;
    });
    canvas.dataset.points = String(bars);
  }

  // Live feed over server-sent events; the browser reconnects by itself after errors.
  function feed(handlers, onState) {
    const source = new EventSource(withKey("/api/v1/feed"));
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => fn(JSON.parse(event.data)));
    }
    source.onopen = () => onState && onState(true);
    source.onerror = () => onState && onState(false);
    return source;
  }

  // Replace an <img>'s frame only when the previous one finished loading (no request pile-up).
  function refreshFrame(img, url) {
    if (img.dataset.loading === "1") { img.dataset.pending = url; return; }
    img.dataset.loading = "1";
    const done = () => {
      img.dataset.loading = "0";
      if (img.dataset.pending) { const next = img.dataset.pending; delete img.dataset.pending; refreshFrame(img, next); }
    };
    img.onload = () => { img.dataset.loaded = String(Number(img.dataset.loaded || 0) + 1); done(); };
    img.onerror = done;
    img.src = withKey(url);
  }

  // [kind, text] of a camera event or alert, for the event tables.
  function describeEvent(event) {
    if (event.type === "alert" && event.kind === "people") {
      const labels = Object.entries(event.labels || {}).map(([l, n]) => `${n} ${l}`).join(", ");
      return ["alert", `${event.people} unmasked people in ${Math.max(1, Math.round(event.window_s / 60))} min` +
        (labels ? ` (${labels})` : "")];
    }
    if (event.type === "alert" && event.kind === "unmasked_share") {
      return ["alert", `${Math.round(event.share * 100)}% of ${event.people} people unmasked (last ${Math.round(event.window_s / 60)} min)`];
    }
    if (event.type === "alert" && event.kind === "line") {
      return ["alert", `${event.rule || "rule"}: person #${event.track_id} ${event.label} ` +
        `${event.direction === "out" ? "left" : "entered"} through ${event.line}`];
    }
    if (event.type === "alert" && event.kind === "zone") {
      return ["alert", `${event.rule || "rule"}: person #${event.track_id} ${event.label} in zone ${event.zone}`];
    }
    if (event.type === "alert") return ["alert", `person #${event.track_id} ${event.label}`];
    if (event.type === "crossing") {
      return [event.direction === "out" ? "exit" : "entry",
        `#${event.track_id} ${event.label} ${event.direction === "out" ? "left" : "came in"} through ${event.line}`];
    }
    if (event.type === "person") return ["person", `#${event.track_id} ${event.label} (${event.frames} frames)`];
    const parts = Object.entries(event.faces || {}).map(([l, n]) => `${l} ${n}`);
    return ["labels changed", parts.length ? parts.join(", ") : "no faces"];
  }

  // The text of a recorded alert (the history API's {kind, event}).
  function describeAlert(alert) {
    return describeEvent(Object.assign({ type: "alert" }, alert.event || {}, { kind: alert.kind }))[1];
  }

  // Count a finished load of the page's data on <body data-loaded> (what the page tests wait for).
  function markLoaded() {
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }

  // Face thumbnails of an event or alert (base64 JPEGs from the API) as <img> elements with data: URIs.
  const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
  function thumbnails(event) {
    const list = event.thumbnails || (event.thumbnail ? [event.thumbnail] : []);
    const box = el("span", { class: "thumbs" });
    for (const data of list) {
      if (typeof data === "string" && BASE64.test(data)) {
        box.append(el("img", { class: "thumb", alt: "face", src: `data:image/jpeg;base64,${data}` }));
      }
    }
    return box;
  }

  // The people (or entries) part of a tile: counts per label over the last hour and the share masked.
  function peopleBlock(windows, what = "people") {
    const counts = el("div", { class: `counts ${what}-counts` });
    for (const label of LABELS) counts.append(el("span", { class: "chip", "data-label": label, "data-count": "0", text: `${label.replace("_", " ")} 0` }));
    const rates = el("div", { class: `rates ${what}-rates` });
    for (const [w, name] of windows) {
      rates.append(el("div", { "data-window": w }, el("b", { text: "–" }), el("span", { text: `${what} masked, ${name}` })));
    }
    const title = what === "people" ? "People, last hour" : "Entries, last hour";
    return el("div", { class: what }, el("div", { class: "section-title", text: title }), counts, rates);
  }

  function showPeople(block, cam, what = "people") {
    const source = what === "people" ? cam.people : cam.entries;
    const shares = what === "people" ? cam.people_compliance : cam.entries_compliance;
    const counts = (source && source["1h"]) || {};
    for (const label of LABELS) {
      const chip = block.querySelector(`.${what}-counts .chip[data-label="${label}"]`);
      chip.textContent = `${label.replace("_", " ")} ${counts[label] || 0}`;
      chip.dataset.count = String(counts[label] || 0);
    }
    for (const [w, value] of Object.entries(shares || {})) {
      const cell = block.querySelector(`.${what}-rates [data-window="${w}"] b`);
      if (cell) cell.textContent = percent(value);
    }
    if (shares && "today" in shares) {  // entries since midnight where the backend counts them: shown for the day
      const day = block.querySelector(`.${what}-rates [data-window="1d"]`);
      if (day) { day.querySelector("b").textContent = percent(shares.today); day.querySelector("span").textContent = `${what} masked, today`; }
    }
  }

  function timeOf(event) {
    return event.time ? new Date(event.time * 1000).toLocaleTimeString() : "";
  }

  function setConnection(ok) {
    const node = document.getElementById("conn");
    if (node) node.textContent = ok ? "live" : "reconnecting…";
  }

  return { LABELS, colors, api, withKey, loadColors, percent, el, drawChart, feed, refreshFrame, describeEvent,
    describeAlert, markLoaded, thumbnails, peopleBlock, showPeople, timeOf, setConnection };
})();
