// Footage board, live without a reload: every few seconds ask status.json for the progress of
// the assets shown with work in flight, swap in the card of any whose state or fixity changed,
// and add the cards of assets ingested since (matching the board's filters) at the top.
(function () {
  "use strict";
  var board = document.getElementById("footage-board");
  if (!board) { return; }
  var url = board.getAttribute("data-status-url");
  var since = board.getAttribute("data-since");
  var filters = new URLSearchParams(window.location.search);
  var count = document.getElementById("asset-count");

  function left(s) {
    return s < 60 ? Math.max(1, Math.round(s)) + " s" : (s < 3600 ? Math.round(s / 60) + " min"
      : Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min");
  }
  function card(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    return tpl.content.firstElementChild;
  }
  function watched() {
    // Assets with work in flight, and any not settled yet (their state may still change).
    return Array.prototype.filter.call(board.querySelectorAll("li[data-asset-id]"), function (li) {
      var s = li.getAttribute("data-state");
      return li.querySelector("progress") || (s !== "ready" && s !== "damaged" && s !== "failed");
    }).map(function (li) { return li.getAttribute("data-asset-id"); }).slice(0, 200);
  }
  function tick() {
    var q = new URLSearchParams(filters);
    q.set("ids", watched().join(","));
    q.set("since", since);
    fetch(url + "?" + q.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        since = data.since;
        data.items.forEach(function (item) {
          var li = board.querySelector('li[data-asset-id="' + item.id + '"]');
          if (!li) { return; }
          if (li.getAttribute("data-state") !== item.state || li.getAttribute("data-fixity") !== item.fixity ||
              (item.progress === null) !== !li.querySelector("progress")) {
            li.replaceWith(card(item.html));
            return;
          }
          var bar = li.querySelector("progress");
          if (bar && item.progress !== null) { bar.value = item.progress; bar.textContent = Math.round(item.progress * 100) + "%"; }
          var step = li.querySelector("[data-step-for]");
          if (step && item.job) {
            step.textContent = item.job.kind + (item.job.step ? ": " + item.job.step : "") + " · " + item.job.percent + "%" +
              (item.job.eta_seconds ? " · about " + left(item.job.eta_seconds) + " left" : "");
          }
        });
        data["new"].forEach(function (item) {
          if (board.querySelector('li[data-asset-id="' + item.id + '"]')) { return; }
          var empty = board.querySelector("li.empty");
          if (empty) { empty.remove(); }
          board.insertBefore(card(item.html), board.firstChild);
          if (count) { count.textContent = String(board.querySelectorAll("li[data-asset-id]").length); }
        });
        window.setTimeout(tick, 3000);
      })
      .catch(function () { window.setTimeout(tick, 10000); });
  }
  window.setTimeout(tick, 3000);
}());
