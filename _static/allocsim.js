/* The book's page script (added to every page by _ext/allocsim_book.py).
 *
 * 1. Colour mode: sphinx-book-theme has no default_mode option, so the pydata theme starts with an
 *    empty mode and logs "Got invalid theme mode"; start in "auto" (follow the system) instead.
 * 2. Charts: every chart is a <div class="allocsim-chart"> carrying its Vega-Lite spec as JSON in
 *    data-spec (lib/allocsim/pages/charts.py). They are embedded with the vega served by the book
 *    (_static/vega/vega-bundle.js), take the width of the text column, and are embedded again with
 *    dark colours when the page switches to the dark theme (pydata sets data-theme on <html>).
 * 3. Composed charts (hconcat, vconcat, facets) cannot take width "container" in Vega-Lite, so they
 *    are fitted here: side by side views are stacked when the column is narrow, and every view's
 *    plot width is cut until the drawn chart fits the column (drawn again, at most four times);
 *    a resize of the column fits them again.
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
    views[id] = { theme: theme, width: el.clientWidth };
    spec.config = merge(spec.config || {}, dark() ? DARK : LIGHT);
    var view = views[id];
    if (composed(spec) && el.clientWidth < NARROW) {
      stack(spec);
      wrapTitles(spec, el.clientWidth - 20);
      // a bottom legend lays its entries in one row: give it rows of as many as fit
      spec.config.legend = merge(spec.config.legend || {}, { columns: el.clientWidth < 450 ? 1 : 2 });
      // x-axis titles end at the plot's right edge instead of centring past it under a narrow plot
      spec.config.axisX = merge(spec.config.axisX || {}, { titleAnchor: "end", titleAlign: "right" });
    }
    draw(el, spec, view, 0);
  }

  // ---- fitting composed charts to the column
  var NARROW = 600;      // below this column width, side-by-side views are stacked
  var MIN_PLOT = 80;     // no plot is cut narrower than this (px)

  function composed(spec) {
    var enc = spec.encoding || {};
    return !!(spec.hconcat || spec.vconcat || spec.concat || spec.facet || spec.repeat ||
              enc.row || enc.column || enc.facet);
  }

  // hconcat → vconcat, wrapped concat → one column, column facets → rows, recursively. A chart
  // faceted by row AND column gets one row per (row, column) pair, labelled with both values.
  function stack(spec) {
    var enc = spec.encoding;
    if (enc && enc.column) {
      if (enc.row) {
        var r = enc.row.field, c = enc.column.field;
        spec.transform = (spec.transform || []).concat([{
          calculate: "datum[" + JSON.stringify(r) + "] + ' · ' + datum[" + JSON.stringify(c) + "]",
          as: "allocsim_panel"
        }]);
        enc.row = { field: "allocsim_panel", type: "nominal", title: null, header: enc.row.header || {} };
      } else {
        enc.row = enc.column;
      }
      delete enc.column;
    }
    if (spec.facet && spec.facet.column && !spec.facet.row) {
      spec.facet.row = spec.facet.column;
      delete spec.facet.column;
    }
    if (spec.hconcat) {
      spec.vconcat = spec.hconcat;
      delete spec.hconcat;
    }
    if (spec.concat) {
      spec.columns = 1;
    }
    (spec.vconcat || spec.concat || []).forEach(stack);
    if (spec.spec) {
      stack(spec.spec);
    }
  }

  // Break a view title (and subtitle) into lines that fit `room` px: a long title would widen the chart.
  function lines(text, chars) {
    if (Array.isArray(text)) {
      text = text.join(" ");
    }
    if (typeof text !== "string" || text.length <= chars) {
      return text;
    }
    var out = [], line = "";
    text.split(/\s+/).forEach(function (word) {
      if (line && (line + " " + word).length > chars) {
        out.push(line);
        line = word;
      } else {
        line = line ? line + " " + word : word;
      }
    });
    out.push(line);
    return out;
  }

  function wrapTitles(spec, room) {
    if (spec.title) {
      var t = typeof spec.title === "object" && !Array.isArray(spec.title) ? spec.title : { text: spec.title };
      t.text = lines(t.text, Math.max(12, Math.floor(room / 8.5)));
      if (t.subtitle) {
        t.subtitle = lines(t.subtitle, Math.max(12, Math.floor(room / 6.5)));
      }
      spec.title = t;
    }
    ["x", "y"].forEach(function (ch) {  // axis titles too: x in lines as wide as a narrow plot
      var e = spec.encoding && spec.encoding[ch];
      if (e && typeof e.title === "string") {
        e.title = lines(e.title, Math.max(12, Math.floor((ch === "x" ? room / 2 : room) / 7)));
      }
    });
    (spec.hconcat || spec.vconcat || spec.concat || spec.layer || []).forEach(function (k) { wrapTitles(k, room); });
    if (spec.spec) {
      wrapTitles(spec.spec, room);
    }
  }

  // Cut the plot width of every view (a mark or a layer) by `cut` px.
  function narrow(spec, cut, fallback) {
    var kids = spec.hconcat || spec.vconcat || spec.concat;
    if (kids) {
      kids.forEach(function (k) { narrow(k, spec.hconcat ? cut / kids.length : cut, fallback); });
    } else if (spec.facet && spec.spec) {
      narrow(spec.spec, cut, fallback);
    } else if (spec.mark || spec.layer) {
      var w = typeof spec.width === "number" ? spec.width : fallback;
      spec.width = Math.max(MIN_PLOT, Math.floor(w - cut));
    }
  }

  function draw(el, spec, view, round) {
    window.vegaEmbed(el, spec, { mode: "vega-lite", actions: false })
      .then(function (result) {
        view.result = result;
        if (!composed(spec) || round >= 4) {
          return;
        }
        var svg = el.querySelector("svg.marks, canvas");
        // the drawn width (the attribute: CSS max-width would only scale the picture down)
        var drawn = !svg ? 0 : svg.tagName === "CANVAS" ? svg.width / (window.devicePixelRatio || 1) :
          parseFloat(svg.getAttribute("width")) || 0;
        var room = el.clientWidth;
        if (drawn <= room + 1 || room < MIN_PLOT) {
          return;
        }
        // views side by side inside one facet share the excess; estimate how many from the drawn width
        var enc = spec.encoding || {};
        var fallback = ((spec.config || {}).view || {}).continuousWidth || 460;
        var unit = spec.spec || spec;
        var leaf = typeof unit.width === "number" ? unit.width : fallback;
        var across = (enc.column || (spec.facet && spec.facet.column)) ?
          Math.max(1, Math.floor(drawn / (leaf + 10))) : 1;
        narrow(spec, Math.ceil((drawn - room) / across) + 2, fallback);
        result.finalize();
        draw(el, spec, view, round + 1);
      })
      .catch(function (err) {
        el.textContent = "This chart could not be drawn: " + err;
        el.classList.add("allocsim-chart-error");
      });
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      document.querySelectorAll(".allocsim-chart").forEach(function (el) {
        var v = views[el.id];
        if (v && Math.abs(el.clientWidth - v.width) > 20) {
          if (v.result) {
            v.result.finalize();
          }
          delete views[el.id];
          embed(el.id);
        }
      });
    }, 200);
  });

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
