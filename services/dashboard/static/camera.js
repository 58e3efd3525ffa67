// One camera: live annotated frame with its zones and lines (and their editor), entries per label where the
// camera has counting lines, people per label and their compliance, face compliance per window with the last
// hour's chart, CSV downloads, static faces with an ignore-zone suggestion, recent events with face thumbnails.
"use strict";

(() => {
  const M = Maskwatch;
  const camera = decodeURIComponent(location.pathname.split("/").pop());
  const base = `/api/v1/cameras/${encodeURIComponent(camera)}`;
  document.getElementById("name").textContent = camera;
  document.title = `maskwatch · ${camera}`;

  const rates = document.getElementById("rates");
  for (const [w, name] of [["1m", "last minute"], ["1h", "last hour"], ["1d", "last day"]]) {
    rates.append(M.el("div", { "data-window": w }, M.el("b", { text: "–" }), M.el("span", { text: `masked, ${name}` })));
  }
  document.getElementById("csv-day").href = M.withKey(`${base}/stats.csv?window=1d`);
  document.getElementById("csv-hour").href = M.withKey(`${base}/stats.csv?window=1h`);
  document.getElementById("csv-entries").href = M.withKey(`${base}/entries.csv?window=1d&period=1h`);
  const zones = MaskwatchZones.editor(camera, document.getElementById("frame"), document.getElementById("overlay"));

  // People (or entries) per label over the last hour and day, led by the share masked.
  function countTable(table, counts, shares, total, extra = [], windows = ["1h", "1d"]) {
    const row = (name, attrs, cells) => M.el("tr", attrs, M.el("th", { text: name }), ...cells.map((c) => M.el("td", c)));
    const sum = (w) => Object.values(counts[w] || {}).reduce((a, b) => a + b, 0);
    const rows = M.LABELS.map((l) => row(l.replace("_", " "), { "data-label": l },
      windows.map((w) => ({ "data-window": w, text: String((counts[w] || {})[l] || 0) }))));
    rows.unshift(row("masked", { class: "share" }, windows.map((w) => ({ "data-window": w, text: M.percent((shares || {})[w]) }))));
    rows.push(row(total, { class: "total" }, windows.map((w) => ({ "data-window": w, text: String(sum(w)) }))));
    for (const [name, values] of extra) {
      rows.push(row(name, { class: "extra" }, windows.map((w) => ({ "data-window": w,
        text: String(Object.values(values[w] || {}).reduce((a, b) => a + b, 0)) }))));
    }
    table.querySelector("tbody").replaceChildren(...rows);
  }

  function showPeople(cam) {
    const lines = Boolean(cam.has_lines);
    document.getElementById("entries-block").hidden = !lines;
    if (lines) {
      // "today" where the backend counts it (since midnight), else the rolling last day
      const day = cam.entries && cam.entries.today ? "today" : "1d";
      const table = document.getElementById("entries");
      table.querySelector("thead th:last-child").textContent = day === "today" ? "today" : "last day";
      countTable(table, cam.entries || {}, cam.entries_compliance, "entries", [["exits", cam.exits || {}]], ["1h", day]);
    }
    countTable(document.getElementById("people"), cam.people, cam.people_compliance, "people");
  }

  // The static face cut from the live frame (the API gives its box, not a picture).
  function faceCrop(box) {
    const img = document.getElementById("frame");
    const canvas = M.el("canvas", { class: "thumb", role: "img", "aria-label": "the static face in the latest frame" });
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!w || !h) return canvas;
    const [x1, y1, x2, y2] = [box[0] * w, box[1] * h, box[2] * w, box[3] * h];
    const scale = 48 / Math.max(1, y2 - y1);
    canvas.width = Math.max(1, Math.round((x2 - x1) * scale)); canvas.height = 48;
    canvas.getContext("2d").drawImage(img, x1, y1, x2 - x1, y2 - y1, 0, 0, canvas.width, canvas.height);
    return canvas;
  }

  async function loadStaticFaces() {
    let faces = [];
    try { faces = await M.api(`${base}/static-faces`); } catch (e) { faces = []; }
    document.getElementById("static-card").hidden = !faces.length;
    document.querySelector("#static-faces tbody").replaceChildren(...faces.map((face) => {
      const button = M.el("button", { type: "button", text: "Suggest ignore zone",
        "aria-label": `suggest an ignore zone around static face ${face.track_id}` });
      button.addEventListener("click", () => zones.suggest(face.suggestion));
      return M.el("tr", { "data-track": String(face.track_id) }, M.el("td", {}, faceCrop(face.box)),
        M.el("td", { text: M.timeOf({ time: face.first_seen }) }), M.el("td", { text: M.timeOf({ time: face.last_seen }) }),
        M.el("td", { text: face.box.map((v) => v.toFixed(2)).join(", ") }), M.el("td", {}, button));
    }));
  }

  function countsOf(faces) {
    const counts = {};
    for (const face of faces) { const l = face.track_label || face.label; counts[l] = (counts[l] || 0) + 1; }
    return counts;
  }

  function showCounts(counts) {
    const box = document.getElementById("counts");
    box.replaceChildren(...M.LABELS.map((l) => M.el("span", { class: "chip", "data-label": l, "data-count": String(counts[l] || 0), text: `${l.replace("_", " ")} ${counts[l] || 0}` })));
  }

  function showOverview(cam) {
    const status = document.getElementById("status");
    status.textContent = cam.status === "live" && !cam.up ? "stalled" : cam.status;
    status.className = `status ${cam.up ? "live" : (cam.status === "live" ? "down" : cam.status)}`;
    document.getElementById("camera-error").textContent = cam.error || "";
    showPeople(cam);
    zones.setOccupancy(cam.occupancy);
    for (const [w, value] of Object.entries(cam.compliance)) rates.querySelector(`[data-window="${w}"] b`).textContent = M.percent(value);
    M.drawChart(document.getElementById("chart"), cam.chart);
    const fps = cam.fps ? `${Number(cam.fps).toFixed(1)} fps · ` : "";
    document.getElementById("meta").textContent = `${fps}${cam.frames_captured} captured · ${cam.frames_processed} processed · ${cam.frames_dropped} dropped · model ${cam.model_version || "–"}`;
    if (cam.latest) {
      showCounts(cam.latest.counts);
      const img = document.getElementById("frame");
      if (!img.dataset.loaded) M.refreshFrame(img, `${base}/frame.jpg?f=${cam.latest.frame}`);
    }
  }

  async function loadEvents() {
    const events = await M.api(`${base}/events?limit=50`);
    const body = document.querySelector("#events tbody");
    body.replaceChildren(...events.map((e) => {
      const [kind, text] = M.describeEvent(e);
      return M.el("tr", { "data-type": e.type, "data-kind": e.kind || "" }, M.el("td", { text: M.timeOf(e) }),
        M.el("td", { text: kind }), M.el("td", {}, M.thumbnails(e)), M.el("td", { text }));
    }));
  }

  function refresh() {
    M.api(base).then(showOverview).then(loadEvents)
      .catch((e) => { document.getElementById("error").textContent = e.message; });
  }

  const frameLoaded = new Promise((resolve) => document.getElementById("frame").addEventListener("load", resolve, { once: true }));
  M.loadColors().then(refresh).then(zones.load).then(() => Promise.race([frameLoaded, new Promise((r) => setTimeout(r, 3000))]))
    .then(loadStaticFaces);
  M.feed({
    cameras: (list) => {
      const cam = list.find((c) => c.id === camera);
      if (cam) { showOverview(cam); loadEvents().catch(() => {}); loadStaticFaces(); }
    },
    frame: (result) => {
      if (result.camera !== camera) return;
      showCounts(countsOf(result.faces));
      M.refreshFrame(document.getElementById("frame"), `${base}/frame.jpg?f=${result.frame}`);
    },
  }, M.setConnection);
})();
