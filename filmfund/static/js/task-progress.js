// A long task's progress in the page, live without a reload (the credits roll): while the task is
// queued or running, ask its status URL (filmfund.progress's record of it) every 1.5 s, move the
// bar with the percent and the time left, and when it ends show the download (or the error).
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url][data-status]");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var wrap = document.getElementById("roll-progress");
  var bar = wrap.querySelector("progress");
  var text = wrap.querySelector(".roll-status");
  var download = document.getElementById("roll-download");
  var finished = document.getElementById("roll-finished");
  var button = box.querySelector('button[type="submit"]');

  function left(s) {
    return s < 60 ? Math.max(1, Math.round(s)) + " s" : (s < 3600 ? Math.round(s / 60) + " min"
      : Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min");
  }
  function show(st) {
    box.setAttribute("data-status", st.status);
    var busy = st.status === "queued" || st.status === "running";
    if (button) { button.disabled = busy; }
    wrap.hidden = !(busy || st.status === "failed");
    bar.value = st.progress || 0;
    bar.textContent = (st.percent || 0) + "%";
    if (st.status === "queued") { text.textContent = "Waiting for the worker…"; }
    else if (st.status === "running") {
      text.textContent = (st.percent || 0) + "% rendered" + (st.eta_seconds ? " · about " + left(st.eta_seconds) + " left" : "");
    } else if (st.status === "failed") { text.textContent = "The render failed: " + (st.error || ""); }
    if (st.status === "succeeded" && st.download_url) {
      download.hidden = false;
      if (finished && st.finished_at) { finished.textContent = "rendered " + st.finished_at.slice(0, 16).replace("T", " ") + " UTC"; }
      var stale = document.getElementById("roll-stale");
      if (stale) { stale.remove(); }
    }
    return busy;
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (st) { if (show(st)) { window.setTimeout(tick, 1500); } },
            function () { window.setTimeout(tick, 10000); });
  }
  var now = box.getAttribute("data-status");
  if (now === "queued" || now === "running") {
    if (button) { button.disabled = true; }
    window.setTimeout(tick, 1000);
  }
}());
