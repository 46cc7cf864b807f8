// The desk queue's live countdown to each ticket's first-response due time. Progressive enhancement: the
// server already prints the due time (Jalali) in each <time data-due>; this only adds "1 h 5 min left" or
// "12 min late" beside it and refreshes it every 30 seconds. The words come from the table's data-word-*
// attributes (the page's catalog); the server's clock (data-now) is the reference, so a wrong clock on the
// technician's machine does not move the countdown. Plain JavaScript, shipped with the package.
"use strict";
(function () {
  const table = document.querySelector("table[data-countdown]");
  if (!table) return;
  const words = table.dataset;
  const skew = Date.parse(words.now) - Date.now();
  const persian = (document.documentElement.lang || "").startsWith("fa");
  const digits = (s) => persian ? String(s).replace(/[0-9]/g, (d) => "۰۱۲۳۴۵۶۷۸۹"[d]) : String(s);

  function text(ms) {
    const late = ms < 0;
    const minutes = Math.floor(Math.abs(ms) / 60000);
    const h = Math.floor(minutes / 60), m = minutes % 60;
    const parts = (h ? digits(h) + " " + words.wordHour + " " : "") + digits(m) + " " + words.wordMinute;
    return parts + " " + (late ? words.wordLate : words.wordLeft);
  }

  function tick() {
    const now = Date.now() + skew;
    for (const time of table.querySelectorAll("time[data-due]")) {
      const ms = Date.parse(time.dataset.due) - now;
      const out = time.parentElement.querySelector(".countdown");
      if (!out) continue;
      out.textContent = text(ms);
      out.classList.toggle("late", ms < 0);
      if (ms < 0) time.closest("tr")?.classList.add("overdue");
    }
  }

  tick();
  setInterval(tick, 30000);
})();
