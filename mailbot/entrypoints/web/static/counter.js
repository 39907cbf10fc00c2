// The characters left in a capped free-text field (a note, a reason), said as the clerk types:
// "残り 1,234 文字". Without JavaScript the form still says its cap ("2,000文字まで") and the
// field's maxlength stops the typing; the desk refuses anything longer either way.
"use strict";
document.querySelectorAll("small.counter[data-max]").forEach(function (counter) {
  var field = counter.parentElement.querySelector("input, textarea");
  if (!field) return;
  var max = Number(counter.dataset.max);
  var show = function () {
    // A line break is one character, as the desk counts it (the browser sends CRLF).
    var left = max - field.value.replace(/\r\n/g, "\n").length;
    counter.textContent = "残り " + left.toLocaleString("ja-JP") + " 文字";
    counter.classList.toggle("low", left < max / 10);
  };
  field.addEventListener("input", show);
  show();
});
