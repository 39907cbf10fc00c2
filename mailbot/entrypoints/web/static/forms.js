// The forms' helpers, none needed for a form to work (CSP: a file of ours, no inline script).
// 1. The characters left in a capped free-text field (a note, a reason), said as the clerk types:
//    "残り 1,234 文字". Without JavaScript the form says its cap ("2,000文字まで"), the field's
//    maxlength stops the typing, and the desk refuses anything longer either way.
// 2. The browser's own message for a field it refuses before sending is in the browser's language
//    ("Please match the requested format"): said in Japanese instead, with the field's format (its title).
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
document.querySelectorAll("form input:not([type=hidden]), form textarea").forEach(function (field) {
  field.addEventListener("invalid", function () {
    if (field.validity.valueMissing) {
      field.setCustomValidity("入力してください。");
    } else if (field.validity.patternMismatch) {
      field.setCustomValidity("形式が違います。" + (field.title ? field.title + "で入力してください。" : ""));
    }
  });
  // Typed again: the browser checks it afresh at the next send.
  field.addEventListener("input", function () { field.setCustomValidity(""); });
});
