// Live refresh of the console dashboard: every data-refresh seconds, fetch the page again and replace
// each element marked data-live (by id). Everything works without this script; it only saves a reload.
// It never replaces anything while the operator is typing in a form, and keeps open lists open.
(function () {
  "use strict";
  var secs = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!secs || !window.fetch || !window.DOMParser) { return; }
  function typing() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA");
  }
  function refresh() {
    if (typing() || document.hidden) { return; }
    fetch(window.location.pathname, {
      credentials: "same-origin",
      redirect: "manual",
      // Tells the server this is not operator activity, so an unattended console still logs out.
      headers: { "X-Sonae-Live-Refresh": "1" }
    })
      .then(function (r) {
        // Logged out (idle timeout): show the login page rather than leave stale figures on screen.
        if (r.type === "opaqueredirect") { window.location.reload(); throw new Error("logged out"); }
        if (r.status !== 200) { throw new Error("status " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-live][id]").forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          if (!old) { return; }
          // Keep folded lists (<details>) as the operator left them.
          old.querySelectorAll("details[id]").forEach(function (d) {
            var f = fresh.querySelector("#" + d.id);
            if (f) { f.open = d.open; }
          });
          old.replaceWith(document.importNode(fresh, true));
        });
      })
      .catch(function () {
        // Never let old figures look current: say so; the next round tries again.
        var u = document.getElementById("updated");
        if (u) { u.textContent = "自動更新できません。表示が古い可能性があります（接続を確認してください）"; u.className = "bad"; }
      });
  }
  window.setInterval(refresh, secs * 1000);
})();

// Countdown of an approved evacuation alert's cancel window: counts down to data-countdown-ms (unix ms) and
// reloads the page when the window ends, so the operator sees it being sent. Without script the page's own
// live refresh (or a reload) shows the same.
(function () {
  "use strict";
  function tick() {
    var els = document.querySelectorAll("[data-countdown-ms]");
    els.forEach(function (el) {
      var left = Math.ceil((parseInt(el.getAttribute("data-countdown-ms"), 10) - Date.now()) / 1000);
      el.textContent = String(Math.max(0, left));
      if (left <= -1 && !el.getAttribute("data-reloading")) {
        el.setAttribute("data-reloading", "1");
        window.location.reload();
      }
    });
  }
  tick();
  window.setInterval(tick, 250);
})();
