// An asset's page, live without a reload: while the asset has a job or is not settled, ask
// status.json every second (two when no job runs) for its job's progress (the job row its worker's heartbeat
// writes: percent, step, time left) and move the bar; when the state changes or the job ends,
// fetch the page again and swap in its live part (player, renditions, problems) and history.
(function () {
  "use strict";
  var live = document.getElementById("asset-live");
  if (!live) { return; }
  var url = live.getAttribute("data-status-url");
  var SETTLED = { ready: 1, damaged: 1, failed: 1 };

  function left(s) {
    return s < 60 ? Math.max(1, Math.round(s)) + " s" : (s < 3600 ? Math.round(s / 60) + " min"
      : Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min");
  }
  function show(job) {
    var box = document.getElementById("job-progress");
    if (!box) { return; }
    if (!job) { box.hidden = true; return; }
    box.hidden = false;
    var bar = box.querySelector("progress");
    bar.value = job.progress || 0;
    bar.textContent = job.percent + "%";
    box.querySelector(".job-kind").textContent = job.kind;
    box.querySelector(".job-status").textContent = job.percent + "% · " + job.status + (job.step ? " · " + job.step : "") +
      (job.eta_seconds ? " · about " + left(job.eta_seconds) + " left" : "") +
      (job.attempts > 1 ? " · attempt " + job.attempts : "");
  }
  function refresh() {
    return fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["asset-live", "asset-history"].forEach(function (id) {
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          if (fresh && old) { old.replaceWith(document.importNode(fresh, true)); }
        });
        live = document.getElementById("asset-live");
      });
  }
  function watching() {
    return live.getAttribute("data-job") || !SETTLED[live.getAttribute("data-state")];
  }
  function tick() {
    if (!watching()) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        var item = data.items[0];
        if (!item) { return; }
        var hadJob = !!live.getAttribute("data-job");
        show(item.job);
        if (item.state !== live.getAttribute("data-state") || hadJob !== !!item.job) {
          return refresh();
        }
      })
      .then(function () { window.setTimeout(tick, live.getAttribute("data-job") ? 1000 : 2000); },
            function () { window.setTimeout(tick, 10000); });
  }
  window.setTimeout(tick, 1000);
}());
