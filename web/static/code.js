/* Checks a typed trace code as it is typed: 20 digits, Damm check digit (domain/tracecode.py). */
(function () {
  "use strict";
  var DAMM = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0]];
  function dammOk(digits) {
    var interim = 0;
    for (var i = 0; i < digits.length; i++) { interim = DAMM[interim][digits.charCodeAt(i) - 48]; }
    return interim === 0;
  }
  var input = document.getElementById("code");
  var out = document.getElementById("code-check");
  if (!input || !out) { return; }
  function check() {
    // Full-width digits from a Chinese input method count as digits (the server reads them the same way).
    var typed = input.value.normalize ? input.value.normalize("NFKC") : input.value;
    var code = typed.replace(/[\s\-]/g, "");
    var state = "", message = "";
    if (code === "") {
      message = "";
    } else if (!/^[0-9]+$/.test(code)) {
      state = "bad"; message = input.dataset.chars;
    } else if (code.length < 20) {
      message = input.dataset.digits.replace("{n}", code.length);
    } else if (code.length > 20) {
      state = "bad"; message = input.dataset.digits.replace("{n}", code.length);
    } else if (dammOk(code) && code.charAt(0) !== "0" && code.charAt(0) !== "9") {
      state = "ok"; message = input.dataset.ok;
    } else if (code.charAt(0) === "8" && input.dataset.drug) {
      message = input.dataset.drug;  // a drug trace code (药品追溯码) has a check of its own
    } else {
      state = "bad"; message = input.dataset.bad;
    }
    out.textContent = message;
    out.className = "check" + (state ? " check-" + state : "");
    if (state === "bad") { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
  }
  input.addEventListener("input", check);
  if (input.value) { check(); }
}());
