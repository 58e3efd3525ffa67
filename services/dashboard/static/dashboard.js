// Camera tiles: annotated latest frame, status, entries per label and their compliance where the camera has
// counting lines, people per label and their compliance (last hour, day), then faces per label now, face
// compliance per window and chart.
"use strict";

(() => {
  const M = Maskwatch;
  const tiles = new Map();
  const grid = document.getElementById("tiles");

  function buildTile(camera) {
    const frame = M.el("img", { class: "frame", alt: `latest frame of ${camera}` });
    const placeholder = M.el("div", { class: "frame empty", text: "no frame yet" });
    const counts = M.el("div", { class: "counts face-counts" });
    for (const label of M.LABELS) {
      counts.append(M.el("span", { class: "chip small", "data-label": label, title: label, text: `${label.replace("_", " ")} 0` }));
    }
    const rates = M.el("div", { class: "rates face-rates small" });
    for (const [w, name] of [["1m", "last minute"], ["1h", "last hour"], ["1d", "last day"]]) {
      rates.append(M.el("div", { "data-window": w }, M.el("b", { text: "–" }), M.el("span", { text: `faces masked, ${name}` })));
    }
    const tile = M.el("section", { class: "card tile", "data-camera": camera },
      M.el("h2", {}, M.el("a", { href: `/cameras/${encodeURIComponent(camera)}`, text: camera }),
        M.el("span", { class: "status", text: "unknown" })),
      frame, placeholder, M.peopleBlock([["1h", "last hour"], ["1d", "last day"]], "entries"),
      M.peopleBlock([["1h", "last hour"], ["1d", "last day"]]),
      M.el("div", { class: "section-title", text: "Faces in the latest frame" }), counts, rates,
      M.el("canvas", { class: "chart", title: "faces per label, each minute of the last hour" }),
      M.el("div", { class: "chart-caption", text: "last hour, per minute: share of faces by label" }),
      M.el("div", { class: "error" }));
    grid.append(tile);
    tiles.set(camera, tile);
    return tile;
  }

  function setCounts(tile, counts) {
    for (const label of M.LABELS) {
      const chip = tile.querySelector(`.face-counts .chip[data-label="${label}"]`);
      chip.textContent = `${label.replace("_", " ")} ${counts[label] || 0}`;
      chip.dataset.count = String(counts[label] || 0);
    }
  }

  function updateOverview(cam) {
    const tile = tiles.get(cam.id) || buildTile(cam.id);
    const status = tile.querySelector(".status");
    const shown = cam.status === "live" && !cam.up ? "stalled" : cam.status;
    status.textContent = shown;
    status.className = `status ${cam.up ? "live" : (cam.status === "live" ? "down" : cam.status)}`;
    tile.querySelector(".error").textContent = cam.error || "";
    const entries = tile.querySelector(".entries");
    entries.hidden = !cam.has_lines;
    if (cam.has_lines) M.showPeople(entries, cam, "entries");
    M.showPeople(tile.querySelector(".people"), cam);
    for (const [w, value] of Object.entries(cam.compliance)) {
      const cell = tile.querySelector(`.face-rates [data-window="${w}"] b`);
      if (cell) cell.textContent = M.percent(value);
    }
    if (cam.latest) {
      setCounts(tile, cam.latest.counts);
      const img = tile.querySelector(".frame");
      if (!img.dataset.loaded) M.refreshFrame(img, `/api/v1/cameras/${encodeURIComponent(cam.id)}/frame.jpg?f=${cam.latest.frame}`);
    }
    M.drawChart(tile.querySelector("canvas.chart"), cam.chart);
  }

  function showCameras(list) {
    document.getElementById("empty").hidden = list.length > 0;
    list.forEach(updateOverview);
  }

  function onFrame(result) {
    const tile = tiles.get(result.camera);
    if (!tile) return;
    const counts = {};
    for (const face of result.faces) {
      const label = face.track_label || face.label;
      counts[label] = (counts[label] || 0) + 1;
    }
    setCounts(tile, counts);
    M.refreshFrame(tile.querySelector(".frame"), `/api/v1/cameras/${encodeURIComponent(result.camera)}/frame.jpg?f=${result.frame}`);
  }

  function showAlerts(alerts) {
    const body = document.querySelector("#alerts tbody");
    if (!alerts.length) { body.replaceChildren(M.el("tr", {}, M.el("td", { colspan: "4", class: "muted", text: "none" }))); return; }
    body.replaceChildren(...alerts.map((a) => M.el("tr", { "data-kind": a.kind || "" },
      M.el("td", { text: M.timeOf(a) }),
      M.el("td", {}, M.el("a", { href: `/cameras/${encodeURIComponent(a.camera)}`, text: a.camera })),
      M.el("td", {}, M.thumbnails(a)),
      M.el("td", { text: M.describeEvent(a)[1] }))));
  }

  M.loadColors().then(() => M.api("/api/v1/cameras")).then(showCameras)
    .catch((e) => { document.getElementById("error").textContent = `cannot load cameras: ${e.message}`; });
  M.feed({ cameras: showCameras, frame: onFrame, alerts: showAlerts }, M.setConnection);
})();
