// Intake settings: the iframe code follows the width/height fields as they are typed.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var width = document.getElementById("f-width");
    var height = document.getElementById("f-height");
    var snippet = document.getElementById("snippet");
    var warning = document.getElementById("size-warning");
    var copy = document.getElementById("copy-snippet");
    if (!width || !height || !snippet) { return; }
    var MIN = warning ? parseInt(warning.getAttribute("data-min"), 10) : 300;
    function size(input) {
      var value = parseInt(input.value, 10);
      return isNaN(value) || value < 1 ? null : Math.min(value, 4000);
    }
    function update() {
      var w = size(width), h = size(height);
      var text = snippet.value;
      if (w) { text = text.replace(/ width="\d+"/, ' width="' + w + '"'); }
      if (h) { text = text.replace(/ height="\d+"/, ' height="' + h + '"'); }
      snippet.value = text;
      if (warning) { warning.hidden = !((w && w < MIN) || (h && h < MIN)); }
    }
    width.addEventListener("input", update);
    height.addEventListener("input", update);
    if (copy) {
      copy.hidden = false;
      copy.addEventListener("click", function () {
        snippet.select();
        var done = function () { copy.textContent = copy.getAttribute("data-done"); };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(snippet.value).then(done, function () { document.execCommand("copy"); done(); });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    }
  });
})();
