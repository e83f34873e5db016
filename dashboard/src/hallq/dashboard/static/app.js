// hallq dashboard: the little the pages need beyond htmx (served locally, no inline scripts).
(function () {
  "use strict";

  // -- alerts: a sound and a browser notification for every alert that was not there before --------------
  var known = null;          // alert keys seen so far (null until the first list arrived)
  var audio = null;          // an AudioContext, once the manager allowed sound (browsers need a click)

  function beep() {
    if (!audio) return;
    var t = audio.currentTime;
    [0, 0.25].forEach(function (d) {
      var o = audio.createOscillator(), g = audio.createGain();
      o.type = "sine"; o.frequency.value = 880;
      g.gain.setValueAtTime(0.0001, t + d);
      g.gain.exponentialRampToValueAtTime(0.3, t + d + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + d + 0.2);
      o.connect(g); g.connect(audio.destination);
      o.start(t + d); o.stop(t + d + 0.22);
    });
  }

  function checkAlerts(root) {
    var items = root.querySelectorAll("[data-alert-key]");
    var now = {}, fresh = [];
    items.forEach(function (el) {
      var k = el.getAttribute("data-alert-key");
      now[k] = true;
      if (known !== null && !known[k]) { fresh.push(el); el.classList.add("new"); }
    });
    known = now;
    if (!fresh.length) return;
    document.body.setAttribute("data-last-alert", fresh[0].getAttribute("data-alert-key"));
    beep();
    if (window.Notification && Notification.permission === "granted") {
      fresh.forEach(function (el) {
        try { new Notification("hallq", { body: el.textContent.replace(/\s+/g, " ").trim(), tag: el.getAttribute("data-alert-key") }); } catch (e) { /* ignored */ }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var alerts = document.getElementById("alerts");
    if (alerts) checkAlerts(alerts);
    var enable = document.getElementById("enable-alerts");
    if (enable) {
      enable.addEventListener("click", function () {
        try { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); audio.resume(); } catch (e) { audio = null; }
        if (window.Notification && Notification.permission === "default") Notification.requestPermission();
        enable.classList.add("on");
        beep();
      });
    }
    tickElapsed();
    setInterval(tickElapsed, 1000);
  });

  document.addEventListener("htmx:afterSwap", function (ev) {
    if (ev.target && ev.target.id === "alerts") checkAlerts(ev.target);
    if (ev.target && ev.target.classList.contains("form-result")) {
      // a dialog's form: on success close the dialog and show the answer on the page; else keep it open
      var ok = ev.target.querySelector("[data-ok='1']");
      var d = ev.target.closest("dialog");
      if (ok && d) {
        var result = document.getElementById("result");
        if (result) result.innerHTML = ev.target.innerHTML;
        ev.target.innerHTML = "";
        d.querySelectorAll("form").forEach(function (f) { f.reset(); });
        d.close();
      }
    }
    tickElapsed();
  });

  // -- the caller: time served, keyboard shortcuts like a hardware caller, dialogs -----------------------------
  function tickElapsed() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (isNaN(t)) return;
      var s = Math.max(0, Math.floor((Date.now() - t) / 1000));
      var m = Math.floor(s / 60), r = s % 60;
      el.textContent = m + ":" + (r < 10 ? "0" : "") + r;
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-dialog]");
    if (b) {
      var d = document.getElementById(b.getAttribute("data-dialog"));
      if (d && !d.open) d.showModal();
      return;
    }
    var c = ev.target.closest("[data-close]");
    if (c) { var dd = c.closest("dialog"); if (dd) dd.close(); }
  });

  document.addEventListener("keydown", function (ev) {
    if (!document.querySelector(".caller")) return;
    if (document.querySelector("dialog[open]")) return;   // typing in a dialog: keys are letters, not buttons
    var b = document.querySelector("button[data-key='" + ev.key + "']");
    if (b) { ev.preventDefault(); b.click(); }
  });
})();
document.addEventListener("click", function (ev) {
  if (ev.target.closest(".print-button")) window.print();
});
