// Footage board: poll the status of assets with work in flight and update their progress bars.
(function () {
  "use strict";
  var board = document.getElementById("footage-board");
  if (!board) { return; }
  var url = board.getAttribute("data-status-url");
  function busy() {
    return Array.prototype.map.call(board.querySelectorAll("progress[data-progress-for]"), function (el) {
      return el.getAttribute("data-progress-for");
    });
  }
  function tick() {
    var ids = busy();
    if (!ids.length) { return; }
    fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (data) {
        var reload = false;
        data.items.forEach(function (item) {
          var bar = board.querySelector('progress[data-progress-for="' + item.id + '"]');
          var li = board.querySelector('li[data-asset-id="' + item.id + '"]');
          if (item.progress === null || (li && li.getAttribute("data-state") !== item.state)) { reload = true; return; }
          if (bar) { bar.value = item.progress; bar.textContent = Math.round(item.progress * 100) + "%"; }
          var step = board.querySelector('[data-step-for="' + item.id + '"]');
          if (step && item.step) { step.textContent = item.step; }
        });
        if (reload) { window.location.reload(); } else { window.setTimeout(tick, 3000); }
      })
      .catch(function () { window.setTimeout(tick, 10000); });
  }
  window.setTimeout(tick, 3000);
}());
