// The query terminal: the on-screen keypad, the focus kept on the code field (so a barcode gun typing
// digits and Enter lands there), and the way back to the start screen after the page sits idle.
(function () {
  "use strict";
  var root = document.getElementById("kiosk");
  var form = document.getElementById("kiosk-form");
  var input = document.getElementById("kiosk-code");
  if (!root || !form || !input) return;
  var idle = Math.max(1, parseInt(root.getAttribute("data-idle"), 10) || 60) * 1000;
  var home = root.getAttribute("data-home") || "/kiosk";
  var atStart = root.getAttribute("data-start") === "1";
  var timer = null;

  function restart() {
    if (timer !== null) window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      if (!atStart || input.value !== "") window.location.assign(home);
      else restart();
    }, idle);
  }

  function focusField() {
    if (document.activeElement !== input) input.focus({ preventScroll: true });
  }

  form.addEventListener("click", function (event) {
    var key = event.target.closest ? event.target.closest("button[data-key]") : null;
    if (!key) return;
    var k = key.getAttribute("data-key");
    if (k === "clear") input.value = "";
    else if (k === "back") input.value = input.value.slice(0, -1);
    else if (input.value.length < 64) input.value += k;
    focusField();
  });
  form.addEventListener("submit", function (event) {
    if (input.value.trim() === "") event.preventDefault();
  });
  ["pointerdown", "keydown", "input", "touchstart"].forEach(function (name) {
    document.addEventListener(name, restart, { passive: true });
  });
  // A barcode gun types wherever the focus is: keep it on the code field.
  document.addEventListener("keydown", function (event) {
    if (event.target !== input && !event.ctrlKey && !event.metaKey && !event.altKey && event.key.length === 1) focusField();
  }, true);
  input.addEventListener("blur", function () { window.setTimeout(focusField, 0); });
  focusField();
  restart();
})();
