/* The monthly report: the print button, and charts redrawn at the A4 page's width while printing
   (Plotly draws at the screen's width; print CSS alone can't rescale an SVG drawn in pixels). */
(function () {
  "use strict";
  var PRINT_WIDTH = 700;   // px: A4 less the @page margins, at 96 dpi
  var PRINT_HEIGHT = 270;
  var button = document.querySelector("[data-print]");
  if (button) { button.addEventListener("click", function () { window.print(); }); }

  function charts() {
    return Array.prototype.filter.call(document.querySelectorAll(".sb-chart[data-figure]"),
      function (el) { return el.layout && window.Plotly; });
  }
  function forPrint() {
    charts().forEach(function (el) {
      if (!el.dataset.screenHeight) { el.dataset.screenHeight = String(el.layout.height || 340); }
      window.Plotly.relayout(el, { width: PRINT_WIDTH, height: PRINT_HEIGHT, autosize: false });
    });
  }
  function forScreen() {
    charts().forEach(function (el) {
      if (!el.dataset.screenHeight) { return; }
      window.Plotly.relayout(el, { width: null, height: Number(el.dataset.screenHeight), autosize: true });
      delete el.dataset.screenHeight;
    });
  }
  window.addEventListener("beforeprint", forPrint);
  window.addEventListener("afterprint", forScreen);
  if (window.matchMedia) {
    var query = window.matchMedia("print");
    var onChange = function (event) { if (event.matches) { forPrint(); } else { forScreen(); } };
    if (query.addEventListener) { query.addEventListener("change", onChange); } else if (query.addListener) { query.addListener(onChange); }
  }
})();
