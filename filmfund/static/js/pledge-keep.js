// What the donor typed in the pledge form, kept in this tab only (sessionStorage: never sent to
// the server, never in a URL, gone when the tab closes), so that it is not lost on the way back:
// a cancelled checkout (/?amount=…&cancelled=1), a failed payment's "Try again" (/?amount=…), and
// the language switch (/?lang=…, also from a refused pledge, which has no page of its own to come
// back to). Filled in there only into the fields the server left empty (the amount it carried back
// stands); the boxes and the monthly choice as the donor left them. Forgotten once a gift is
// paid or under way (the thank-you page). Without script the form works as before: the server
// keeps what it can carry (the amount).
(function () {
  "use strict";
  var KEY = "filmfund.pledge-form";
  var TEXTS = ["amount", "email", "credit_name"];
  var BOXES = ["anonymous", "rewards_opt_out"];
  var store;
  try { store = window.sessionStorage; } catch (e) { return; }  // storage refused (privacy settings)
  if (!store) { return; }

  var status = document.getElementById("payment-status");
  if (status) {
    var state = status.getAttribute("data-state");
    if (state === "paid" || state === "processing") {
      try { store.removeItem(KEY); } catch (e) { /* nothing to forget */ }
    }
    return;
  }

  var form = document.getElementById("pledge-form");
  if (!form) { return; }

  function field(name) { return form.elements.namedItem(name); }

  function save() {
    var kept = {};
    TEXTS.forEach(function (name) { if (field(name)) { kept[name] = field(name).value; } });
    BOXES.forEach(function (name) { if (field(name)) { kept[name] = field(name).checked; } });
    var month = form.querySelector("input[name=interval][value=month]");
    kept.interval = month && month.checked ? "month" : "once";
    try { store.setItem(KEY, JSON.stringify(kept)); } catch (e) { /* full or refused: nothing kept */ }
  }

  function restore() {
    var kept;
    try { kept = JSON.parse(store.getItem(KEY) || "null"); } catch (e) { kept = null; }
    if (!kept || typeof kept !== "object") { return; }
    TEXTS.forEach(function (name) {
      var input = field(name);
      if (input && !input.value && typeof kept[name] === "string" && kept[name]) {
        input.value = kept[name];
        input.dispatchEvent(new Event("input", {bubbles: true}));  // the tier preview follows
      }
    });
    BOXES.forEach(function (name) {
      var box = field(name);
      if (box && typeof kept[name] === "boolean" && box.checked !== kept[name]) {
        box.checked = kept[name];
        box.dispatchEvent(new Event("change", {bubbles: true}));
      }
    });
    var choice = form.querySelector("input[name=interval][value=" + (kept.interval === "month" ? "month" : "once") + "]");
    if (choice && !choice.checked) {
      choice.checked = true;
      choice.dispatchEvent(new Event("change", {bubbles: true}));
    }
  }

  // Only a way back restores (a refused pledge's page, /pledge, shows what was sent and has no
  // query); a page opened afresh leaves the kept values alone until the donor types.
  var asked = new URLSearchParams(window.location.search);
  if (asked.has("cancelled") || asked.has("lang") || asked.has("amount")) { restore(); }
  form.addEventListener("input", save);
  form.addEventListener("change", save);
  form.addEventListener("submit", save);
}());
