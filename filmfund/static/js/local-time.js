/* <time datetime="..." data-local>: the time in the reader's own zone and language (the page
   writes it in UTC for readers without script). */
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  var nodes = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < nodes.length; i++) {
    var when = new Date(nodes[i].getAttribute("datetime"));
    if (isNaN(when.getTime())) continue;
    try {
      nodes[i].textContent = new Intl.DateTimeFormat(lang, {
        year: "numeric", month: "long", day: "numeric", weekday: "short",
        hour: "2-digit", minute: "2-digit", timeZoneName: "short"
      }).format(when);
    } catch (e) { /* keep the UTC text */ }
  }
})();
