// CheckOS logo page: preview the chosen image at 32, 64, 128 and 256 px before upload.
// The server checks everything again; this only spares a round trip.
(function () {
  "use strict";
  var ACCEPTED = ["image/png", "image/jpeg", "image/webp"];

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("logo-form");
    var input = document.getElementById("f-logo");
    var preview = document.getElementById("logo-preview");
    var problem = document.getElementById("logo-client-error");
    var submit = document.getElementById("logo-submit");
    if (!form || !input || !preview || !problem) { return; }
    var slots = preview.querySelectorAll("[data-size]");
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
    var current = null;

    function say(message) {
      problem.textContent = message || "";
      problem.hidden = !message;
      if (submit) { submit.disabled = !!message; }
    }

    function clearPreview() {
      preview.hidden = true;
      if (current) { URL.revokeObjectURL(current); current = null; }
      slots.forEach(function (slot) { slot.textContent = ""; });
    }

    input.addEventListener("change", function () {
      clearPreview();
      say("");
      var file = input.files && input.files[0];
      if (!file) { return; }
      if (ACCEPTED.indexOf(file.type) < 0) { say(form.getAttribute("data-msg-bad-type")); return; }
      if (maxBytes && file.size > maxBytes) { say(form.getAttribute("data-msg-too-large")); return; }
      current = URL.createObjectURL(file);
      var probe = new Image();
      probe.onload = function () {
        slots.forEach(function (slot) {
          var size = slot.getAttribute("data-size");
          var img = document.createElement("img");
          img.className = "logo-preview-img size-" + size;
          img.alt = "";
          img.width = img.height = parseInt(size, 10);
          img.src = current;
          slot.textContent = "";
          slot.appendChild(img);
        });
        preview.hidden = false;
      };
      probe.onerror = function () { clearPreview(); say(form.getAttribute("data-msg-unreadable")); };
      probe.src = current;
    });
  });
})();
