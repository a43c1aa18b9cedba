/* Vendor page: scan with the phone camera where the browser has BarcodeDetector; otherwise the
   photo field sends a picture for the server to decode. Also the receipt's print button. */
(function () {
  "use strict";
  var printButton = document.getElementById("print");
  if (printButton) { printButton.addEventListener("click", function () { window.print(); }); }
  var button = document.getElementById("scan");
  var video = document.getElementById("preview");
  var input = document.getElementById("code");
  if (!button || !video || !input || !("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
  button.hidden = false;
  button.addEventListener("click", async function () {
    var detector, stream;
    try {
      detector = new window.BarcodeDetector({ formats: ["qr_code", "code_128", "data_matrix", "ean_13"] });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (e) {
      button.hidden = true;
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    var stop = function () { stream.getTracks().forEach(function (t) { t.stop(); }); video.hidden = true; };
    var tick = async function () {
      try {
        var found = await detector.detect(video);
        if (found.length) {
          input.value = found[0].rawValue;
          input.dispatchEvent(new Event("input"));
          stop();
          return;
        }
      } catch (e) { stop(); return; }
      window.requestAnimationFrame(tick);
    };
    tick();
  });
}());
