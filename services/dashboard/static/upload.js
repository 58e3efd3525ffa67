// Upload page: send each photo to /api/v1/detect, draw its boxes on a canvas and list its faces.
"use strict";

(() => {
  const M = Maskwatch;
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const results = document.getElementById("results");

  const MAX_CANVAS_SIDE = 2000;  // a 48-megapixel phone photo is drawn smaller; boxes are in its own pixels

  function drawResult(canvas, bitmap, result) {
    const k = Math.min(1, MAX_CANVAS_SIDE / Math.max(result.width, result.height));
    canvas.width = Math.round(result.width * k); canvas.height = Math.round(result.height * k);
    const ctx = canvas.getContext("2d");
    ctx.scale(k, k);
    ctx.drawImage(bitmap, 0, 0, result.width, result.height);
    const line = Math.max(2, Math.round(Math.max(result.width, result.height) / 300));
    const font = Math.max(11, Math.round(Math.max(result.width, result.height) / 75));
    ctx.lineWidth = line; ctx.font = `600 ${font}px system-ui, sans-serif`;
    result.faces.forEach((face, i) => {
      const [x1, y1, x2, y2] = face.box;
      const color = M.colors[face.label] || "#c8c8c8";
      ctx.strokeStyle = color; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const text = `${i + 1} ${face.label} ${Math.round(face.confidence * 100)}%`;
      const w = ctx.measureText(text).width + 6, ty = y1 - font - 4 >= 0 ? y1 - font - 4 : y2;
      ctx.fillStyle = color; ctx.fillRect(x1, ty, w, font + 4);
      ctx.fillStyle = "#fff"; ctx.fillText(text, x1 + 3, ty + font);
    });
  }

  function faceTable(result) {
    const rows = result.faces.map((face, i) => M.el("tr", { "data-label": face.label },
      M.el("td", { text: String(i + 1) }),
      M.el("td", {}, M.el("span", { class: "swatch", style: `background:${M.colors[face.label] || "#c8c8c8"}` }), face.label),
      M.el("td", { text: `${Math.round(face.confidence * 100)}%` }),
      M.el("td", { text: face.score.toFixed(2) }),
      M.el("td", { text: face.box.join(", ") })));
    return M.el("table", { class: "faces" },
      M.el("thead", {}, M.el("tr", {}, ...["#", "label", "confidence", "face score", "box"].map((h) => M.el("th", { text: h })))),
      M.el("tbody", {}, ...rows));
  }

  async function handle(file) {
    const card = M.el("section", { class: "card upload", "data-file": file.name }, M.el("h2", { text: file.name }), M.el("p", { class: "muted", text: "analysing…" }));
    results.prepend(card);
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const result = await M.api("/api/v1/detect", { method: "POST", body: form });
      const canvas = M.el("canvas", { class: "annotated" });
      try { drawResult(canvas, await createImageBitmap(file, { imageOrientation: "from-image" }), result); } catch (e) { /* browser cannot show this type */ }
      const counts = {};
      for (const f of result.faces) counts[f.label] = (counts[f.label] || 0) + 1;
      const summary = `${result.width}×${result.height} · ${result.faces.length} face(s)` +
        (result.faces.length ? ": " + Object.entries(counts).map(([l, n]) => `${n} ${l}`).join(", ") : "") +
        ` · model ${result.model_version}`;
      card.replaceChildren(M.el("h2", { text: file.name }), M.el("p", { class: "muted summary", text: summary }),
        M.el("div", { class: "result" }, canvas, faceTable(result)));
      card.dataset.faces = String(result.faces.length);
    } catch (e) {
      card.replaceChildren(M.el("h2", { text: file.name }), M.el("p", { class: "error", text: e.message }));
      card.dataset.error = e.message;
    }
  }

  function handleAll(files) { for (const file of files) handle(file); }

  for (const picker of [input, document.getElementById("camera")]) {
    picker.addEventListener("change", () => { handleAll(picker.files); picker.value = ""; });
  }
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); handleAll(e.dataTransfer.files); });
  M.loadColors();
})();
