// The follow page: live updates by Server-Sent Events, a sound and a vibration when the ticket is called.
(function () {
  "use strict";
  var card = document.getElementById("ticket");
  if (!card) return;
  var view = JSON.parse(card.getAttribute("data-view"));
  var audio = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render(v) {
    var st = document.getElementById("state");
    st.textContent = "";
    card.className = "card " + v.status;
    if (v.status === "waiting") {
      var big = el("div", "big");
      big.appendChild(document.createTextNode("前面还有 "));
      big.appendChild(el("b", "", String(v.ahead))).id = "ahead";
      big.appendChild(document.createTextNode(" 人"));
      st.appendChild(big);
      st.appendChild(el("div", "en", v.ahead + " ahead of you"));
      if (v.est_high !== null) {
        var est = el("div", "est", "预计等候约 " + v.est_low + "–" + v.est_high + " 分钟 ");
        est.appendChild(el("span", "en", "about " + v.est_low + "–" + v.est_high + " min"));
        st.appendChild(est);
      }
      if (v.ahead <= 3) st.appendChild(el("div", "near", "快到了，请回到等候区 · Almost your turn"));
    } else if (v.status === "called") {
      var call = el("div", "big call");
      call.appendChild(document.createTextNode("请到 "));
      call.appendChild(el("b", "", v.window_name)).id = "window";
      call.appendChild(document.createTextNode(" 办理"));
      st.appendChild(call);
      st.appendChild(el("div", "en", "Please go to " + v.window_name_en));
    } else if (v.status === "gone") {
      st.appendChild(el("div", "big", "此号已不在等候"));
      st.appendChild(el("div", "en", "This number is no longer waiting (served, missed or cancelled)."));
    } else {
      st.appendChild(el("div", "big", "正在连接…"));
    }
  }

  function ring() {
    if (navigator.vibrate) navigator.vibrate([400, 200, 400, 200, 400]);
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = audio || new Ctx();
      [0, 0.5, 1.0].forEach(function (t) {
        var o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = 880;
        g.gain.value = 0.3;
        o.connect(g); g.connect(audio.destination);
        o.start(audio.currentTime + t); o.stop(audio.currentTime + t + 0.3);
      });
    } catch (e) { /* no sound on this phone */ }
  }

  document.getElementById("sound").addEventListener("click", function () {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) { audio = audio || new Ctx(); audio.resume(); }
    this.textContent = "提示音已开启 · Sound on";
  });

  var es = new EventSource(card.getAttribute("data-events"));
  var off = document.getElementById("offline");
  es.addEventListener("ticket", function (e) {
    var v = JSON.parse(e.data);
    var newly = v.status === "called" && (view.status !== "called" || view.window !== v.window || view.recalls !== v.recalls);
    view = v;
    render(v);
    card.setAttribute("data-status", v.status);
    if (newly) ring();
    off.hidden = true;
  });
  es.onerror = function () { off.hidden = false; };
  es.onopen = function () { off.hidden = true; };
  card.setAttribute("data-status", view.status);
})();
