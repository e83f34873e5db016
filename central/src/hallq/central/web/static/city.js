// hallq city dashboard: the print buttons (no inline scripts: the CSP allows scripts from this server only).
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest(".print-button");
    if (b) { ev.preventDefault(); window.print(); }
  });
})();
