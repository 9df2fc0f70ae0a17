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
  var partner = form.getAttribute("data-partner") || "";
  var locale = form.getAttribute("data-locale") || "en";
  var currency = (form.getAttribute("data-currency") || "usd").toUpperCase();
  // "(in place of …)" beside a reward that takes another's place (the server's holdings.replacements).
  var inPlaceOf = {};
  try { inPlaceOf = JSON.parse(form.getAttribute("data-in-place-of") || "{}"); } catch (e) { inPlaceOf = {}; }
  var said = {};
  try { said = JSON.parse(form.getAttribute("data-messages") || "{}"); } catch (e) { said = {}; }
  var amountInput = document.getElementById("amount");
  var optOut = document.getElementById("rewards_opt_out");
  var preview = document.getElementById("tier-preview");
  // What a screen reader hears: #tier-status (polite, visually hidden) says the outcome's one line
  // (the tier reached, an error, no rewards) once the typing pauses, and only when that outcome
  // changed; the preview's details are shown as typed, never announced on each keystroke.
  var status = document.getElementById("tier-status");
  var ANNOUNCE_AFTER_MS = 500;
  var announced = null, announceTimer = null;
  // The server's refusal of the amount just sent (if any) already says what is wrong: the preview
  // does not say it a second time; once the amount is edited, that refusal is stale and goes.
  var serverError = document.getElementById("amount-error");
  var AMOUNT_RE = /^(?:US\$|\$)?[ ]*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{0,2}))?$/;  // money.py's _AMOUNT_RE

  function parseCents(text) {
    // Full-width forms ("５０．００") read as the ASCII they stand for, as the server reads them (typed.half_width).
    var ascii = (text || "").replace(/[\uFF01-\uFF5E]/g, function (ch) {
      return String.fromCharCode(ch.charCodeAt(0) - 0xFEE0);
    }).replace(/\u3000/g, " ");
    var m = AMOUNT_RE.exec(ascii.trim());
    if (!m) { return null; }
    var whole = m[1].replace(/,/g, "");
    if (whole.replace(/^0+/, "").length > 9) { return null; }
    var frac = ((m[2] || "") + "00").slice(0, 2);
    return parseInt(whole, 10) * 100 + parseInt(frac, 10);
  }

  // The page's language formats money as the server does ("$25", "US$25" in Chinese).
  function money(cents) {
    var part = cents % 100;
    try {
      return new Intl.NumberFormat(locale, {style: "currency", currency: currency,
        minimumFractionDigits: part ? 2 : 0, maximumFractionDigits: part ? 2 : 0}).format(cents / 100);
    } catch (e) {
      var text = "$" + Math.floor(cents / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
      return part ? text + "." + (part < 10 ? "0" : "") + part : text;
    }
  }

  // A sentence from the server's catalogue with its {braced} parts filled in.
  function say(key, values) {
    return (said[key] || "").replace(/\{(\w+)\}/g, function (all, name) {
      return values && name in values ? String(values[name]) : all;
    });
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

  // Shows the preview; returns its outcome ({key, line}): what #tier-status says when it changes.
  function render() {
    var text = amountInput.value;
    var cents = parseCents(text);
    preview.replaceChildren();
    if (!text.trim()) {
      preview.appendChild(el("p", say("empty"), "muted"));
      highlight(null); return {key: "empty", line: ""};
    }
    if (cents === null || cents < 100) {
      var problem = cents === null ? "invalid" : "too_small";
      if (serverError) { highlight(null); return {key: "server", line: ""}; }  // the server's refusal says it
      preview.appendChild(el("p", say(problem), "field-error"));
      highlight(null); return {key: problem, line: say(problem)};
    }
    var reached = null, next = null;
    for (var i = 0; i < tiers.length; i++) {
      if (tiers[i].min_amount <= cents) { reached = tiers[i]; } else if (!next) { next = tiers[i]; }
    }
    var share = el("p", say("share", {share: money(shareOf(cents)), amount: money(cents), partner: partner}), "share-line");
    if (optOut && optOut.checked) {
      preview.appendChild(el("p", say("opt_out"), "tier-reached"));
      preview.appendChild(share);
      highlight(null); return {key: "opt_out", line: say("opt_out")};
    }
    var outcome = {key: "no_tier", line: ""};
    if (reached) {
      var head = el("p", "", "tier-reached");
      var parts = say("reaches", {amount: money(reached.min_amount)}).split("{tier}");
      head.appendChild(document.createTextNode(parts[0]));
      head.appendChild(el("strong", reached.name));
      head.appendChild(document.createTextNode(parts.slice(1).join("")));
      preview.appendChild(head);
      outcome = {key: "tier:" + reached.min_amount, line: head.textContent};
      var earlier = tiers.filter(function (t) { return t.min_amount < reached.min_amount; }).length;
      preview.appendChild(el("p", earlier ? say(earlier > 1 ? "below_other" : "below_one", {count: earlier})
        : say("brings")));
      var list = el("ul", "", "tier-rewards");
      reached.rewards.forEach(function (r) {
        var item = el("li", r.title);
        if (inPlaceOf[r.key]) { item.appendChild(el("span", inPlaceOf[r.key], "muted")); }  // its space included
        list.appendChild(item);
      });
      preview.appendChild(list);
    }
    if (next) {
      var nextLine = el("p", say("next", {amount: money(next.min_amount - cents), tier: next.name}), "muted");
      preview.appendChild(nextLine);
      if (!reached) { outcome.line = nextLine.textContent; }  // below every tier: how far the first is
    }
    preview.appendChild(share);
    highlight(reached ? reached.min_amount : null);
    return outcome;
  }

  function announceLater(outcome) {
    clearTimeout(announceTimer);
    if (!status) { return; }
    announceTimer = setTimeout(function () {
      if (outcome.key === announced) { return; }
      announced = outcome.key;
      status.textContent = outcome.line;
    }, ANNOUNCE_AFTER_MS);
  }

  amountInput.addEventListener("input", function () {
    if (serverError) {
      serverError.remove(); serverError = null;
      amountInput.removeAttribute("aria-invalid");
      amountInput.setAttribute("aria-describedby", "amount-help");
    }
    announceLater(render());
  });
  if (optOut) { optOut.addEventListener("change", function () { announceLater(render()); }); }
  announced = render().key;  // what the page opens with is not announced, only a change
}());
