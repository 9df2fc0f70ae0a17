// The answer form's clip picker: typing in the search box shows only the clips whose title holds it.
(function () {
  "use strict";
  var box = document.getElementById("clip-filter");
  if (!box) { return; }
  var options = document.querySelectorAll("#clip-options .clip-option[data-title]");
  box.addEventListener("input", function () {
    var want = box.value.trim().toLowerCase();
    for (var i = 0; i < options.length; i++) {
      options[i].hidden = want !== "" && options[i].getAttribute("data-title").indexOf(want) < 0;
    }
  });
}());
