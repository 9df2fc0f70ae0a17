/* <time datetime="..." data-local data-zone="Asia/Shanghai">: the page writes the time in the
   reader's language and its zone (data-zone), named; when this browser's zone is another one,
   the time is written again in the browser's zone, named the same way ("…（北京时间）" stays as
   the page wrote it for a reader in Beijing). */
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  var chinese = /^zh/i.test(lang || "");
  var here;
  try { here = new Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  function offset(when, zone) {  /* minutes east of UTC in `zone` at `when` */
    var parts = {}, list = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric"
    }).formatToParts(when);
    for (var k = 0; k < list.length; k++) parts[list[k].type] = +list[k].value;
    return (Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute) - when.getTime()) / 60000;
  }
  var nodes = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < nodes.length; i++) {
    var when = new Date(nodes[i].getAttribute("datetime"));
    if (isNaN(when.getTime()) || !here) continue;
    try {
      var written = nodes[i].getAttribute("data-zone");
      if (written && (written === here || offset(when, written) === offset(when, here))) continue;
      var text = new Intl.DateTimeFormat(lang, {
        year: "numeric", month: "long", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit"
      }).format(when);
      var zone = new Intl.DateTimeFormat(lang, { timeZoneName: "long" }).formatToParts(when)
        .filter(function (p) { return p.type === "timeZoneName"; }).map(function (p) { return p.value; })[0];
      if (zone) text = chinese ? text + "（" + zone + "）" : text + " " + zone;
      nodes[i].textContent = text;
    } catch (e) { /* keep the page's own text */ }
  }
})();
