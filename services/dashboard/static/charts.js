// Charts of the History and Report pages (Chart.js, vendored in /static/vendor): counts per period stacked by
// label, with the masked share as a line on its own 0-100 % axis.
"use strict";

const MaskwatchCharts = (() => {
  const M = Maskwatch;
  const charts = new WeakMap();

  // `points`: [{name, counts: {label: n}, total, masked_share}] oldest first. `options.print` draws at twice the
  // resolution with no animation, for paper.
  function labelChart(canvas, points, options = {}) {
    if (charts.has(canvas)) charts.get(canvas).destroy();
    const hidden = new Set(options.hiddenLabels || []);
    const datasets = M.LABELS.map((label) => ({
      type: "bar", label: label.replace("_", " "), data: points.map((p) => (p.counts || {})[label] || 0),
      backgroundColor: M.colors[label], stack: "people", yAxisID: "y", hidden: hidden.has(label), order: 2,
    }));
    datasets.push({
      type: "line", label: "masked share", yAxisID: "share", order: 1, borderColor: "#1d2430", backgroundColor: "#1d2430",
      data: points.map((p) => (p.masked_share === null || p.masked_share === undefined ? null : Math.round(p.masked_share * 1000) / 10)),
      spanGaps: true, pointRadius: points.length > 60 ? 0 : 2, borderWidth: 2, tension: 0.2,
    });
    const chart = new Chart(canvas, {
      data: { labels: points.map((p) => p.name), datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        devicePixelRatio: options.print ? 2 : window.devicePixelRatio || 1,
        interaction: { mode: "index", intersect: false },
        onClick: options.onClick ? (event, elements) => { if (elements.length) options.onClick(elements[0].index); } : undefined,
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: options.maxTicks || 12 } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: options.yTitle || "people" },
            ticks: { precision: 0 } },
          share: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false },
            title: { display: true, text: "masked %" } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: (ctx) => (ctx.dataset.yAxisID === "share"
            ? `masked: ${ctx.parsed.y === null ? "–" : `${ctx.parsed.y}%`}` : `${ctx.dataset.label}: ${ctx.parsed.y}`) } },
        },
      },
    });
    charts.set(canvas, chart);
    canvas.dataset.periods = String(points.length);
    canvas.dataset.total = String(points.reduce((s, p) => s + (p.total || 0), 0));
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", options.description || "counts per period by label, with the masked share");
    return chart;
  }

  // A short text version of a chart for screen readers and print: the totals and the masked share.
  function summary(totals, what = "people") {
    const counts = totals.counts || {};
    const parts = M.LABELS.map((l) => `${counts[l] || 0} ${l.replace("_", " ")}`).join(", ");
    return `${totals.total || 0} ${what} (${parts}); masked ${M.percent(totals.masked_share)}`;
  }

  return { labelChart, summary };
})();
