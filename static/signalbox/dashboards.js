/* Draws every dashboard figure: each .sb-chart[data-figure] names a json_script element holding
   a Plotly figure built on the server (metrics/charts.py). */
(function () {
  "use strict";
  var config = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
    toImageButtonOptions: { format: "png", scale: 2 }
  };
  function draw(el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source) { return; }
    var fig = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, fig.data || [], fig.layout || {}, config);
  }
  function drawAll() {
    document.querySelectorAll(".sb-chart[data-figure]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
