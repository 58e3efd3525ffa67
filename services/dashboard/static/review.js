// Review page: one queued face at a time; keys 1-4 label it, s skips, u undoes the last label or skip.
"use strict";

(() => {
  const M = Maskwatch;
  const KEYS = { "1": "with_mask", "2": "without_mask", "3": "mask_incorrect", "4": "not_face" };
  let items = [];   // the queue as loaded, current item first
  const history = []; // {action: "label" | "skip", item}
  let labelled = 0;
  let busy = false;

  function show() {
    const card = document.getElementById("card");
    const empty = document.getElementById("empty");
    document.getElementById("counts").textContent = `${items.length} to review · ${labelled} labelled here`;
    if (!items.length) {
      card.hidden = true; empty.hidden = false; card.dataset.id = "";
      return;
    }
    const item = items[0];
    card.hidden = false; empty.hidden = true; card.dataset.id = item.id;
    const crop = document.getElementById("crop");
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(item.crop)) crop.src = `data:image/jpeg;base64,${item.crop}`;
    else crop.removeAttribute("src");
    document.getElementById("model-label").textContent = item.model_label;
    document.getElementById("confidence").textContent = `(${M.percent(item.confidence)})`;
    const body = document.querySelector("#probs tbody");
    body.replaceChildren(...Object.entries(item.probs).sort((a, b) => b[1] - a[1]).map(([label, p]) =>
      M.el("tr", {}, M.el("td", { text: label }), M.el("td", { text: M.percent(p) }))));
    const when = item.seen_at ? new Date(item.seen_at * 1000).toLocaleString() : "";
    const where = item.photo ? `${item.photo} (annotated ${item.annotated})` : `track ${item.track_id}`;
    document.getElementById("meta").textContent =
      `${item.source} · ${where} · ${when} · ${item.reasons.join(", ")} · model ${item.model_version || "?"}`;
  }

  async function post(item, label) {
    return M.api(`/api/v1/review/${encodeURIComponent(item.id)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label }),
    });
  }

  async function act(action) {
    if (busy) return;
    busy = true;
    const error = document.getElementById("error");
    try {
      if (action === "undo") {
        const last = history.pop();
        if (last) {
          if (last.action === "label") { await post(last.item, null); labelled -= 1; }
          items = [last.item, ...items.filter((i) => i.id !== last.item.id)];
        }
      } else if (action === "skip") {
        if (items.length) { const item = items.shift(); items.push(item); history.push({ action, item }); }
      } else if (items.length) {
        const item = items[0];
        await post(item, action);
        items.shift(); labelled += 1;
        history.push({ action: "label", item });
      }
      error.textContent = "";
    } catch (e) {
      error.textContent = `could not save: ${e.message}`;
    } finally {
      busy = false;
      show();
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (KEYS[key]) act(KEYS[key]);
    else if (key === "s") act("skip");
    else if (key === "u") act("undo");
    else return;
    event.preventDefault();
  });
  for (const button of document.querySelectorAll(".review-buttons button")) {
    button.addEventListener("click", () => act(button.dataset.label || button.dataset.action));
  }

  (async () => {
    try {
      items = (await M.api("/api/v1/review?limit=500")).items;
    } catch (e) {
      document.getElementById("error").textContent = `could not load the review queue: ${e.message}`;
    }
    show();
  })();
})();
