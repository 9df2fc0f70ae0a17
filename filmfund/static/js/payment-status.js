// While a payment is pending or processing, check the page quietly every few seconds and reload
// only when the state has changed (no flashing reloads for screen readers; without JS a
// <noscript> meta refresh does the same job).
(function () {
  "use strict";
  var box = document.getElementById("payment-status");
  if (!box || box.getAttribute("data-watch") !== "1" || !window.fetch) { return; }
  var state = box.getAttribute("data-state");
  var tries = 0;
  function check() {
    tries += 1;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) { return resp.text(); })
      .then(function (html) {
        var m = /id="payment-status" data-state="([a-z]+)"/.exec(html);
        if (m && m[1] !== state) { window.location.reload(); return; }
        if (tries < 360) { window.setTimeout(check, tries < 30 ? 3000 : 10000); }
      })
      .catch(function () { if (tries < 360) { window.setTimeout(check, 10000); } });
  }
  window.setTimeout(check, 3000);
}());
