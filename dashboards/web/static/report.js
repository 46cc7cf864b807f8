// The report page's print button (a static file: the Content-Security-Policy allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  for (const b of document.querySelectorAll("[data-print]")) b.addEventListener("click", () => window.print());
});
