// Shared by every page: the CSRF token for fetch(), and deadline countdowns that keep ticking.
"use strict";
const Console = (() => {
  const lang = document.body.dataset.lang || "zh";
  const units = lang === "zh" ? ["天", "小时", "分"] : [" d", " h", " min"];
  const words = lang === "zh" ? { left: "剩余 {t}", over: "超期 {t}" } : { left: "{t} left", over: "overdue by {t}" };

  function csrfHeaders(extra) {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    return Object.assign({ "X-CSRF-Token": token }, extra || {});
  }

  function duration(seconds) {  // the largest two units, as console/countdown.py writes them
    const minutes = Math.floor(Math.abs(seconds) / 60);
    let parts = [[Math.floor(minutes / 1440), units[0]], [Math.floor(minutes % 1440 / 60), units[1]], [minutes % 60, units[2]]];
    while (parts.length > 1 && parts[0][0] === 0) parts.shift();
    return parts.slice(0, 2).map(([v, u]) => v + u).join(lang === "zh" ? "" : " ");
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll(".deadline[data-due]").forEach((el) => {
      const left = Math.floor((Date.parse(el.dataset.due) - now) / 1000);
      const near = el.dataset.remind && now >= Date.parse(el.dataset.remind);
      el.classList.remove("ok", "near", "overdue");
      el.classList.add(left < 0 ? "overdue" : near ? "near" : "ok");
      el.textContent = (left < 0 ? words.over : words.left).replace("{t}", duration(left));
      const row = el.closest("tr");
      if (row) row.className = row.className.replace(/row-\w+/, "row-" + (left < 0 ? "overdue" : near ? "near" : "ok"));
    });
  }
  setInterval(tick, 30000);
  return { csrfHeaders, duration };
})();
