// Intake pages: one click sends once, and after a refused submission the first
// problem is in view (the browser keeps the scroll position of the long form).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
        form.setAttribute("data-sent", "1");
        form.querySelectorAll("button[type=submit]").forEach(function (button) {
          button.setAttribute("aria-disabled", "true");
        });
      });
    });
    var invalid = document.querySelector("[aria-invalid=true]");
    var problem = document.getElementById("intake-problem");
    if (invalid) {
      invalid.focus();
    } else if (problem) {
      problem.scrollIntoView({ block: "start" });
    }
  });
})();
