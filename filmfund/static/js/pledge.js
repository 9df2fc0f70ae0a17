// Live tier preview for the pledge form. The tiers come from the form's data-tiers attribute
// (the server's campaign summary); amounts are parsed as text into integer cents, like the server.
(function () {
  "use strict";
  var form = document.getElementById("pledge-form");
  if (!form) { return; }
  var tiers = [];
  try { tiers = JSON.parse(form.getAttribute("data-tiers") || "[]"); } catch (e) { tiers = []; }
  tiers.sort(function (a, b) { return a.min_amount - b.min_amount; });
  var shareBps = parseInt(form.getAttribute("data-share-bps") || "0", 10);
  var partner = form.getAttribute("data-partner") || "our partner charity";
  var amountInput = document.getElementById("amount");
  var optOut = document.getElementById("rewards_opt_out");
  var preview = document.getElementById("tier-preview");
  var AMOUNT_RE = /^\$?[ ]*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{0,2}))?$/;

  function parseCents(text) {
    var m = AMOUNT_RE.exec((text || "").trim());
    if (!m) { return null; }
    var whole = m[1].replace(/,/g, "");
    if (whole.replace(/^0+/, "").length > 9) { return null; }
    var frac = ((m[2] || "") + "00").slice(0, 2);
    return parseInt(whole, 10) * 100 + parseInt(frac, 10);
  }

  function money(cents) {
    var whole = Math.floor(cents / 100), part = cents % 100;
    var text = "$" + whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return part ? text + "." + (part < 10 ? "0" : "") + part : text;
  }

  function shareOf(cents) { // round half up, in integers, like the server's share rule
    return Math.floor((cents * shareBps * 2 + 10000) / 20000);
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function highlight(minAmount) {
    var items = document.querySelectorAll(".tier[data-min]");
    for (var i = 0; i < items.length; i++) {
      var min = parseInt(items[i].getAttribute("data-min"), 10);
      items[i].classList.toggle("reached", minAmount !== null && min <= minAmount);
      items[i].classList.toggle("current", minAmount !== null && min === minAmount);
    }
  }

  function render() {
    var text = amountInput.value;
    var cents = parseCents(text);
    preview.replaceChildren();
    if (!text.trim()) {
      preview.appendChild(el("p", "Type an amount to see what it brings.", "muted"));
      highlight(null); return;
    }
    if (cents === null) {
      preview.appendChild(el("p", "Enter dollars and cents, like 25 or 25.50.", "field-error"));
      highlight(null); return;
    }
    if (cents < 100) {
      preview.appendChild(el("p", "The smallest gift is $1.", "field-error"));
      highlight(null); return;
    }
    var reached = null, next = null;
    for (var i = 0; i < tiers.length; i++) {
      if (tiers[i].min_amount <= cents) { reached = tiers[i]; } else if (!next) { next = tiers[i]; }
    }
    var share = el("p", money(shareOf(cents)) + " of " + money(cents) + " goes to " + partner + ".", "share-line");
    if (optOut && optOut.checked) {
      preview.appendChild(el("p", "No rewards: your whole gift supports the film and its partner charity.", "tier-reached"));
      preview.appendChild(share);
      highlight(null); return;
    }
    if (reached) {
      var head = el("p", "", "tier-reached");
      head.appendChild(document.createTextNode("This reaches the "));
      head.appendChild(el("strong", reached.name));
      head.appendChild(document.createTextNode(" tier (" + money(reached.min_amount) + "+)."));
      preview.appendChild(head);
      var earlier = tiers.filter(function (t) { return t.min_amount < reached.min_amount; }).length;
      preview.appendChild(el("p", earlier ? "All the rewards of the " + earlier + " tier" +
        (earlier > 1 ? "s" : "") + " below, plus:" : "It brings:"));
      var list = el("ul", "", "tier-rewards");
      reached.rewards.forEach(function (r) { list.appendChild(el("li", r.title)); });
      preview.appendChild(list);
    }
    if (next) {
      preview.appendChild(el("p", "Add " + money(next.min_amount - cents) + " to reach " + next.name + ".", "muted"));
    }
    preview.appendChild(share);
    highlight(reached ? reached.min_amount : null);
  }

  amountInput.addEventListener("input", render);
  if (optOut) { optOut.addEventListener("change", render); }
  render();
}());
