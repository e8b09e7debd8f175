/* The book's page script (added to every page by _ext/allocsim_book.py).
 *
 * 1. Colour mode: sphinx-book-theme has no default_mode option, so the pydata theme starts with an
 *    empty mode and logs "Got invalid theme mode"; start in "auto" (follow the system) instead.
 * 2. Charts: every chart is a <div class="allocsim-chart"> carrying its Vega-Lite spec as JSON in
 *    data-spec (lib/allocsim/pages/charts.py). They are embedded with the vega served by the book
 *    (_static/vega/vega-bundle.js), take the width of the text column, and are embedded again with
 *    dark colours when the page switches to the dark theme (pydata sets data-theme on <html>).
 */
(function () {
  "use strict";
  var root = document.documentElement;
  if (!root.dataset.mode) {
    root.dataset.mode = "auto";
  }

  var DARK = {
    background: "transparent",
    view: { stroke: null },
    title: { color: "#e8e8e8", subtitleColor: "#b8b8b8" },
    axis: { domainColor: "#8a8a8a", tickColor: "#8a8a8a", gridColor: "#3b3b3b",
            labelColor: "#d8d8d8", titleColor: "#e0e0e0" },
    legend: { labelColor: "#d8d8d8", titleColor: "#e0e0e0" },
    header: { labelColor: "#d8d8d8", titleColor: "#e0e0e0" },
    text: { color: "#e0e0e0" },
    rule: { color: "#bdbdbd" },
    style: { "guide-label": { fill: "#d8d8d8" }, "guide-title": { fill: "#e0e0e0" },
             "group-title": { fill: "#e8e8e8" }, "group-subtitle": { fill: "#b8b8b8" } }
  };
  var LIGHT = { background: "transparent" };
  var views = {};

  // Deep merge of b into a (b wins): the dark colours must override the chart's own config
  // (vega-embed's `config` option would not override colours the spec sets itself).
  function merge(a, b) {
    Object.keys(b).forEach(function (k) {
      var v = b[k];
      if (v && typeof v === "object" && !Array.isArray(v)) {
        a[k] = merge(a[k] && typeof a[k] === "object" ? a[k] : {}, v);
      } else {
        a[k] = v;
      }
    });
    return a;
  }

  function dark() {
    return root.dataset.theme === "dark";
  }

  function embed(id) {
    var el = document.getElementById(id);
    if (!el || !el.dataset.spec || typeof window.vegaEmbed !== "function") {
      return;
    }
    var spec = JSON.parse(el.dataset.spec);
    var theme = dark() ? "dark" : "light";
    if (views[id] && views[id].theme === theme) {
      return;
    }
    if (views[id] && views[id].result) {
      views[id].result.finalize();
    }
    views[id] = { theme: theme };
    spec.config = merge(spec.config || {}, dark() ? DARK : LIGHT);
    window.vegaEmbed(el, spec, { mode: "vega-lite", actions: false })
      .then(function (result) { views[id].result = result; })
      .catch(function (err) {
        el.textContent = "This chart could not be drawn: " + err;
        el.classList.add("allocsim-chart-error");
      });
  }

  function embedAll() {
    document.querySelectorAll(".allocsim-chart").forEach(function (el) { embed(el.id); });
  }

  window.allocsimEmbed = embed;
  (window.allocsimPending || []).forEach(embed);
  window.allocsimPending = [];
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", embedAll);
  }
  new MutationObserver(function () { embedAll(); })
    .observe(root, { attributes: true, attributeFilter: ["data-theme"] });
})();
