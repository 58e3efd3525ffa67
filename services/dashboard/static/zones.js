// Zones and counting lines of one camera: drawn over the live frame, edited by clicking points on it, given as
// YAML to paste into the config file and, where the dashboard may write that file, saved with the API key.
"use strict";

const MaskwatchZones = (() => {
  const M = Maskwatch;
  const SVG = "http://www.w3.org/2000/svg";
  const SIDES = ["down", "up", "left", "right"];
  const BARE = /^[A-Za-z][A-Za-z0-9_-]*$/;
  const YAML_WORDS = /^(true|false|yes|no|on|off|null|y|n)$/i;

  const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 1000) / 1000;
  const yamlString = (s) => (BARE.test(s) && !YAML_WORDS.test(s) ? s : JSON.stringify(s));
  const yamlPoints = (points) => `[${points.map(([x, y]) => `[${x}, ${y}]`).join(", ")}]`;

  // The `zones:` and `lines:` keys of one camera entry, indented as under "  - id: camera" in cameras.yaml.
  function toYaml(camera, geometry) {
    const out = [`# cameras.yaml: under "- id: ${camera}", replacing its zones: and lines:`];
    if (geometry.zones.length) {
      out.push("    zones:");
      for (const z of geometry.zones) {
        out.push(`      - name: ${yamlString(z.name)}`, `        points: ${yamlPoints(z.points)}`);
        if (z.ignore) out.push("        ignore: true");
      }
    } else out.push("    zones: []");
    if (geometry.lines.length) {
      out.push("    lines:");
      for (const l of geometry.lines) {
        out.push(`      - name: ${yamlString(l.name)}`, `        points: ${yamlPoints(l.points)}`,
          `        in: ${yamlString(l.in)}`);
      }
    } else out.push("    lines: []");
    return out.join("\n") + "\n";
  }

  function svgEl(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  // The arrow of a line's `in` side: from the line's middle towards the side entries come in to.
  function inArrow(line, zones) {
    const [[x1, y1], [x2, y2]] = line.points;
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    let dx = 0, dy = 0;
    if (line.in === "down") dy = 1; else if (line.in === "up") dy = -1;
    else if (line.in === "right") dx = 1; else if (line.in === "left") dx = -1;
    else {
      const zone = zones.find((z) => z.name === line.in);
      if (!zone) return null;
      const cx = zone.points.reduce((s, p) => s + p[0], 0) / zone.points.length;
      const cy = zone.points.reduce((s, p) => s + p[1], 0) / zone.points.length;
      dx = cx - mx; dy = cy - my;
    }
    // the arrow goes along the line's normal, on the `in` side
    let nx = -(y2 - y1), ny = x2 - x1;
    if (nx * dx + ny * dy < 0) { nx = -nx; ny = -ny; }
    const len = Math.hypot(nx, ny) || 1;
    return [mx, my, nx / len, ny / len];
  }

  // Draw zones, lines and the shape being drawn; the SVG's user units are the frame's pixels.
  function draw(svg, geometry, drawing, width, height) {
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const stroke = Math.max(2, Math.round(Math.max(width, height) / 300));
    const font = Math.max(11, Math.round(Math.max(width, height) / 45));
    const px = ([x, y]) => `${x * width},${y * height}`;
    const nodes = [];
    // a name beside its first point: above it, or below it near the frame's top; leftwards near the right edge
    const label = (text, [x, y], cls) => {
      const top = y * height - stroke * 2 < font ? y * height + font + stroke * 2 : y * height - stroke * 2;
      const t = svgEl("text", { x: x > 0.7 ? x * width - stroke * 2 : x * width + stroke * 2, y: top, "font-size": font,
        "text-anchor": x > 0.7 ? "end" : "start", class: cls });
      t.textContent = text;
      return t;
    };
    for (const z of geometry.zones) {
      const cls = z.ignore ? "zone ignore" : "zone";
      nodes.push(svgEl("polygon", { points: z.points.map(px).join(" "), class: cls, "stroke-width": stroke,
        "data-name": z.name }));
      nodes.push(label(z.ignore ? `${z.name} (ignored)` : z.name, z.points[0], z.ignore ? "tag tag-ignore" : "tag tag-zone"));
    }
    for (const l of geometry.lines) {
      const [a, b] = l.points;
      nodes.push(svgEl("line", { x1: a[0] * width, y1: a[1] * height, x2: b[0] * width, y2: b[1] * height,
        class: "line", "stroke-width": stroke * 2, "data-name": l.name }));
      const arrow = inArrow(l, geometry.zones);
      if (arrow) {
        const [mx, my, nx, ny] = arrow, size = font * 2;
        const tip = [mx * width + nx * size, my * height + ny * size];
        nodes.push(svgEl("line", { x1: mx * width, y1: my * height, x2: tip[0], y2: tip[1], class: "line arrow",
          "stroke-width": stroke * 1.5 }));
        nodes.push(svgEl("circle", { cx: tip[0], cy: tip[1], r: stroke * 2.5, class: "line arrow-tip" }));
      }
      nodes.push(label(`${l.name} (in: ${l.in})`, a, "tag tag-line"));
    }
    if (drawing && drawing.points.length) {
      const cls = drawing.kind === "line" ? "line drawing" : "zone drawing";
      const shape = drawing.kind === "line" || drawing.points.length < 3 ? "polyline" : "polygon";
      nodes.push(svgEl(shape, { points: drawing.points.map(px).join(" "), class: cls, "stroke-width": stroke }));
      for (const p of drawing.points) {
        nodes.push(svgEl("circle", { cx: p[0] * width, cy: p[1] * height, r: stroke * 2.5, class: "vertex" }));
      }
    }
    svg.replaceChildren(...nodes);
    svg.dataset.zones = String(geometry.zones.length);
    svg.dataset.lines = String(geometry.lines.length);
  }

  function parsePoints(text) {
    const points = text.trim().split(/\s+/).filter(Boolean).map((pair) => pair.split(",").map(Number));
    if (!points.length || points.some((p) => p.length !== 2 || p.some((v) => !Number.isFinite(v) || v < 0 || v > 1))) {
      throw new Error("points are x,y pairs from 0 to 1, separated by spaces");
    }
    return points;
  }

  // The editor of one camera. `frame` is the <img> of the live frame; `svg` lies over it.
  function editor(camera, frame, svg) {
    const base = `/api/v1/cameras/${encodeURIComponent(camera)}/zones`;
    const $ = (id) => document.getElementById(id);
    let geometry = { zones: [], lines: [] };
    let saved = JSON.stringify(geometry);
    let version = null, writable = false, drawing = null, occupancy = {};

    function size() { return [frame.naturalWidth || 1280, frame.naturalHeight || 720]; }
    function status(text, error = false) { const s = $("zones-status"); s.textContent = text; s.classList.toggle("error", error); }
    function changed() { return JSON.stringify(geometry) !== saved; }

    function render() {
      draw(svg, geometry, drawing, ...size());
      $("zones-yaml").value = toYaml(camera, geometry);
      $("zones-save").disabled = !writable || !changed() || Boolean(drawing);
      const rows = [];
      const sideSelect = (line) => {
        const select = M.el("select", { "aria-label": `in side of ${line.name}` });
        for (const side of [...SIDES, ...geometry.zones.filter((z) => !z.ignore).map((z) => z.name)]) {
          select.append(M.el("option", { value: side, text: side }));
        }
        select.value = line.in;
        select.addEventListener("change", () => { line.in = select.value; render(); });
        return select;
      };
      const pointsInput = (item, list) => {
        const input = M.el("input", { class: "points", value: item.points.map((p) => p.join(",")).join(" "),
          "aria-label": `points of ${item.name}` });
        input.addEventListener("change", () => {
          try {
            const points = parsePoints(input.value);
            if (list === geometry.lines && points.length !== 2) throw new Error("a line has exactly 2 points");
            if (list === geometry.zones && points.length < 3) throw new Error("a zone has at least 3 points");
            item.points = points; status(""); render();
          } catch (e) { status(e.message, true); }
        });
        return input;
      };
      const remove = (list, item) => {
        const button = M.el("button", { type: "button", text: "Delete", "aria-label": `delete ${item.name}` });
        button.addEventListener("click", () => { list.splice(list.indexOf(item), 1); render(); });
        return button;
      };
      for (const z of geometry.zones) {
        const now = !z.ignore && occupancy[z.name] !== undefined ? ` · ${occupancy[z.name]} in it now` : "";
        rows.push(M.el("tr", { "data-kind": z.ignore ? "ignore" : "zone", "data-name": z.name },
          M.el("td", { text: z.name }), M.el("td", { text: z.ignore ? "ignore zone" : `zone${now}` }),
          M.el("td", {}, pointsInput(z, geometry.zones)), M.el("td"), M.el("td", {}, remove(geometry.zones, z))));
      }
      for (const l of geometry.lines) {
        rows.push(M.el("tr", { "data-kind": "line", "data-name": l.name }, M.el("td", { text: l.name }),
          M.el("td", { text: "line" }), M.el("td", {}, pointsInput(l, geometry.lines)), M.el("td", {}, sideSelect(l)),
          M.el("td", {}, remove(geometry.lines, l))));
      }
      if (!rows.length) rows.push(M.el("tr", {}, M.el("td", { colspan: "5", class: "muted", text: "none yet" })));
      $("zones-table").querySelector("tbody").replaceChildren(...rows);
      $("zone-editor").dataset.changed = String(changed());
    }

    function uniqueName(prefix, list) {
      let n = list.length + 1;
      while (list.some((item) => item.name === `${prefix}-${n}`)) n += 1;
      return `${prefix}-${n}`;
    }

    function start(kind) {
      const list = kind === "line" ? geometry.lines : geometry.zones;
      drawing = { kind, points: [] };
      $("draw-name").value = uniqueName(kind === "ignore" ? "ignore" : kind, list);
      $("drawing").hidden = false;
      svg.classList.add("editing");
      hint();
      render();
    }

    function hint() {
      const need = drawing.kind === "line" ? 2 : 3;
      const n = drawing.points.length;
      $("draw-hint").textContent = drawing.kind === "line"
        ? `click the 2 ends of the line on the frame (${n}/2)`
        : `click the corners on the frame (${n}, at least ${need})`;
      $("draw-done").disabled = n < need;
    }

    function stop() { drawing = null; $("drawing").hidden = true; svg.classList.remove("editing"); render(); }

    function finish() {
      const name = $("draw-name").value.trim();
      const list = drawing.kind === "line" ? geometry.lines : geometry.zones;
      if (!name) { status("give it a name", true); return; }
      if (list.some((item) => item.name === name)) { status(`there is already a ${drawing.kind === "line" ? "line" : "zone"} named ${name}`, true); return; }
      if (drawing.kind === "line") geometry.lines.push({ name, points: drawing.points, in: "down" });
      else geometry.zones.push(Object.assign({ name, points: drawing.points }, drawing.kind === "ignore" ? { ignore: true } : {}));
      status(writable ? "not saved yet" : "copy the YAML into the config file");
      stop();
    }

    svg.addEventListener("click", (event) => {
      if (!drawing) return;
      const box = svg.getBoundingClientRect();
      drawing.points.push([round((event.clientX - box.left) / box.width), round((event.clientY - box.top) / box.height)]);
      if (drawing.kind === "line" && drawing.points.length > 2) drawing.points.shift();
      hint(); render();
    });
    $("add-zone").addEventListener("click", () => start("zone"));
    $("add-ignore").addEventListener("click", () => start("ignore"));
    $("add-line").addEventListener("click", () => start("line"));
    $("draw-undo").addEventListener("click", () => { drawing.points.pop(); hint(); render(); });
    $("draw-cancel").addEventListener("click", stop);
    $("draw-done").addEventListener("click", finish);
    $("zones-copy").addEventListener("click", async () => {
      const text = $("zones-yaml").value;
      try { await navigator.clipboard.writeText(text); status("YAML copied"); }
      catch (e) { $("zones-yaml").select(); status("select the YAML and copy it (Ctrl+C)"); }
    });
    $("zones-save").addEventListener("click", async () => {
      status("saving…");
      try {
        const body = await M.api(`${base}/config`, { method: "PUT", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ zones: geometry.zones, lines: geometry.lines, version }) });
        version = body.version;
        geometry = { zones: body.zones, lines: body.lines };
        saved = JSON.stringify(geometry);
        status("saved to the config file; the tracker applies it within seconds");
        $("zone-editor").dataset.saved = String(Number($("zone-editor").dataset.saved || 0) + 1);
        render();
      } catch (e) {
        status(e.message.startsWith("401") ? `${e.message} (open the page once with ?key=YOUR_KEY)` : e.message, true);
      }
    });
    frame.addEventListener("load", () => { if (svg.getAttribute("viewBox") !== `0 0 ${size().join(" ")}`) render(); });

    // The config file's zones and lines when the dashboard has the file, else the ones the tracker applies.
    async function load() {
      let config = {};
      try {
        config = await M.api(`${base}/config`);
        writable = config.writable;
        version = config.version;
        if (version !== null) geometry = { zones: config.zones, lines: config.lines };
        status(config.problem ? `the config file's zones do not load: ${config.problem}`
          : (writable ? "" : `saving is off: ${config.why_not}`), Boolean(config.problem));
      } catch (e) { status(e.message, true); }
      try {  // what the tracker applies: the geometry without a config file, and why an edit was not applied
        const applied = await M.api(base);
        if (version === null) geometry = { zones: applied.zones, lines: applied.lines };
        if (applied.problem && !config.problem) status(`the tracker keeps the previous zones: ${applied.problem}`, true);
      } catch (e) { /* no tracker has the camera yet */ }
      geometry = {
        zones: geometry.zones.map((z) => Object.assign({ name: z.name, points: z.points }, z.ignore ? { ignore: true } : {})),
        lines: geometry.lines.map((l) => ({ name: l.name, points: l.points, in: l.in })),
      };
      saved = JSON.stringify(geometry);
      $("zone-editor").dataset.ready = "1";
      render();
    }

    // A suggested zone (e.g. an ignore zone around a static face) added to the draft, ready to save or copy.
    function suggest(zone) {
      const name = geometry.zones.some((z) => z.name === zone.name) ? uniqueName("static", geometry.zones) : zone.name;
      geometry.zones.push({ name, points: zone.points.map(([x, y]) => [x, y]), ignore: true });
      status(writable ? `${name} added: save it, or copy the YAML` : `${name} added: copy the YAML into the config file`);
      render();
      $("zone-editor").scrollIntoView({ block: "nearest" });
    }

    // People in each zone now (the camera overview's `occupancy`), shown beside the zones; kept while drawing.
    function setOccupancy(counts) {
      const next = counts || {};
      if (JSON.stringify(next) === JSON.stringify(occupancy)) return;
      occupancy = next;
      if (!drawing) render();
    }

    return { load, suggest, render, setOccupancy };
  }

  return { toYaml, draw, editor, parsePoints };
})();
