// History page: people (or a line's entries) per hour/day/week/month by label with the masked share, the people
// of the range (or of one clicked period) with their faces, paginated, the alerts, and a CSV of each view.
// The filters live in the address, so a view can be bookmarked or shared.
"use strict";

(() => {
  const M = Maskwatch, C = MaskwatchCharts;
  const H = "/api/v1/history";
  const PAGE = 25;
  const $ = (id) => document.getElementById(id);
  const start = new URLSearchParams(location.search);
  const state = { page: 0, slice: null, timezone: "UTC", series: [], reloads: 0,
    asked: { counts: 0, people: 0, alerts: 0 } };

  // Fetch for one part of the page; an answer overtaken by a newer request for that part is dropped (null).
  async function latest(part, url) {
    const mine = ++state.asked[part];
    const body = await M.api(url);
    return mine === state.asked[part] ? body : null;
  }

  function dateIn(timezone, date = new Date()) {
    return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(date);
  }

  function addDays(day, n) {
    const d = new Date(`${day}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // from/to of the chosen range: calendar days in the history's time zone, `to` exclusive.
  function range() {
    const today = dateIn(state.timezone);
    const chosen = $("range").value;
    if (chosen === "today") return { from: today };
    if (chosen === "30d") return { from: addDays(today, -29) };
    if (chosen === "custom" && $("from").value) {
      return $("to").value ? { from: $("from").value, to: addDays($("to").value, 1) } : { from: $("from").value };
    }
    return { from: addDays(today, -6) };
  }

  function selectedCameras() {
    return [...document.querySelectorAll("#cameras input:checked")].map((box) => box.value);
  }

  // The query of the current filters; `what` picks the parts a route takes.
  function query(what, extra = {}) {
    const q = new URLSearchParams();
    const line = $("line").value;
    if (line && what === "counts") {
      const [camera, name] = JSON.parse(line);
      q.append("camera", camera); q.set("line", name); q.set("direction", $("direction").value);
    } else for (const camera of selectedCameras()) q.append("camera", camera);
    const { from, to } = state.slice && what !== "counts" ? state.slice : range();
    q.set("from", String(from));
    if (to !== undefined) q.set("to", String(to));
    if (what === "counts") q.set("period", $("period").value);
    if (what === "people" && $("label").value) q.set("label", $("label").value);
    for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
    return q;
  }

  function remember() {
    const q = new URLSearchParams();
    for (const camera of selectedCameras()) q.append("camera", camera);
    for (const id of ["line", "direction", "range", "period", "label"]) if ($(id).value) q.set(id, $(id).value);
    if ($("range").value === "custom") { q.set("from", $("from").value); q.set("to", $("to").value); }
    history.replaceState(null, "", `${location.pathname}?${q}`);
  }

  function setupFilters(status) {
    state.timezone = status.timezone || "UTC";
    const wanted = new Set(start.getAll("camera"));
    const box = $("cameras");
    box.append(...status.cameras.map((camera) => M.el("label", { class: "check" },
      M.el("input", Object.assign({ type: "checkbox", value: camera, name: "camera" }, wanted.has(camera) ? { checked: "" } : {})),
      document.createTextNode(camera))));
    if (!status.cameras.length) box.append(M.el("span", { class: "muted", text: "nothing recorded yet" }));
    box.append(M.el("span", { class: "muted hint", text: "none ticked: every camera" }));
    for (const { camera, line } of status.lines || []) {
      $("line").append(M.el("option", { value: JSON.stringify([camera, line]), text: `${line} (${camera})` }));
    }
    for (const label of M.LABELS) $("label").append(M.el("option", { value: label, text: label.replace("_", " ") }));
    for (const id of ["line", "direction", "range", "period", "label", "from", "to"]) {
      if (start.get(id) && [...($(id).options || [])].some((o) => o.value === start.get(id))) $(id).value = start.get(id);
      else if (start.get(id) && $(id).type === "date") $(id).value = start.get(id);
    }
    showFieldState();
  }

  function showFieldState() {
    $("custom").hidden = $("range").value !== "custom";
    $("direction-field").hidden = !$("line").value;
    for (const box of document.querySelectorAll("#cameras input")) box.disabled = Boolean($("line").value);
  }

  async function loadCounts() {
    const q = query("counts");
    const body = await latest("counts", `${H}/counts?${q}`);
    if (!body) return;
    state.series = body.series;
    const what = body.line ? (body.direction === "out" ? "exits" : "entries") : "people";
    const where = body.line ? ` through ${body.line} (${(body.cameras || []).join(", ")})` : "";
    $("chart-title").textContent = `${what[0].toUpperCase()}${what.slice(1)}${where} per ${body.period}`;
    $("chart-summary").textContent = `${C.summary(body.totals, what)} · times in ${body.timezone}`;
    C.labelChart($("counts-chart"), body.series, {
      yTitle: what, hiddenLabels: M.LABELS.filter((l) => $("label").value && l !== $("label").value),
      description: `${what} per ${body.period} by label: ${C.summary(body.totals, what)}`,
      onClick: (index) => { const p = state.series[index]; state.slice = { from: p.start, to: p.end, name: p.name }; state.page = 0; loadPeople().catch(fail); loadAlerts().catch(fail); },
    });
    $("csv-counts").href = M.withKey(`${H}/counts.csv?${q}`);
  }

  function duration(seconds) {
    return seconds < 60 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
  }

  async function loadPeople() {
    const body = await latest("people", `${H}/people?${query("people", { limit: PAGE, offset: state.page * PAGE })}`);
    if (!body) return;
    const rows = body.items.map((p) => M.el("tr", { "data-label": p.label, "data-camera": p.camera },
      M.el("td", {}, p.thumbnail_url ? M.el("img", { class: "thumb", alt: `face of person ${p.track_id}`, loading: "lazy",
        src: M.withKey(p.thumbnail_url) }) : M.el("span", { class: "muted", text: "–" })),
      M.el("td", { text: new Date(p.first_seen * 1000).toLocaleString() }),
      M.el("td", {}, M.el("a", { href: `/cameras/${encodeURIComponent(p.camera)}`, text: p.camera })),
      M.el("td", {}, M.el("span", { class: "chip small", "data-label": p.label, text: p.label.replace("_", " ") })),
      M.el("td", { text: duration(p.last_seen - p.first_seen) }),
      M.el("td", { text: (p.zones || []).join(", ") })));
    if (!rows.length) rows.push(M.el("tr", {}, M.el("td", { colspan: "6", class: "muted", text: "nobody in this range" })));
    $("people-table").querySelector("tbody").replaceChildren(...rows);
    $("people-table").dataset.total = String(body.total);
    const first = body.total ? body.offset + 1 : 0, last = body.offset + body.items.length;
    $("page-info").textContent = `${first}–${last} of ${body.total}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = last >= body.total;
    const scope = $("people-range");
    scope.replaceChildren();
    if (state.slice) {
      const all = M.el("button", { type: "button", text: "whole range" });
      all.addEventListener("click", () => { state.slice = null; state.page = 0; loadPeople().catch(fail); loadAlerts().catch(fail); });
      scope.append(document.createTextNode(`in ${state.slice.name} `), all);
    }
    $("csv-people").href = M.withKey(`${H}/people.csv?${query("people")}`);
  }

  async function loadAlerts() {
    const q = query("alerts", { limit: 50 });
    const body = await latest("alerts", `${H}/alerts?${q}`);
    if (!body) return;
    const rows = body.items.map((a) => M.el("tr", { "data-kind": a.kind },
      M.el("td", { text: new Date(a.time * 1000).toLocaleString() }), M.el("td", { text: a.camera }),
      M.el("td", { text: a.kind }), M.el("td", { text: M.describeAlert(a) })));
    if (!rows.length) rows.push(M.el("tr", {}, M.el("td", { colspan: "4", class: "muted", text: "none" })));
    $("alerts-table").querySelector("tbody").replaceChildren(...rows);
    $("alerts-info").textContent = body.total > body.items.length ? `the newest ${body.items.length} of ${body.total};` : "";
    q.delete("limit");
    $("csv-alerts").href = M.withKey(`${H}/alerts.csv?${q}`);
  }

  function fail(e) { $("error").textContent = `history unavailable: ${e.message}`; }

  async function reload() {
    remember();
    $("error").textContent = "";
    state.slice = null; state.page = 0;
    const mine = ++state.reloads;
    try {
      await Promise.all([loadCounts(), loadPeople(), loadAlerts()]);
      if (mine === state.reloads) M.markLoaded();
    } catch (e) { fail(e); }
  }

  $("filters").addEventListener("change", (event) => {
    if (event.target.id === "range") $("period").value = event.target.value === "today" ? "hour" : "day";
    showFieldState();
    if (event.target.id === "label") {
      state.page = 0; remember();
      Promise.all([loadCounts(), loadPeople()]).then(M.markLoaded).catch(fail);
      return;
    }
    reload();
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); loadPeople().catch(fail); });
  $("next").addEventListener("click", () => { state.page += 1; loadPeople().catch(fail); });

  M.loadColors().then(() => M.api(`${H}/status`)).then((status) => { setupFilters(status); return reload(); })
    .catch(fail);
})();
