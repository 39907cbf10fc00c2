// The 進捗リスト page: say which file was picked beside our Japanese file button (the form works without this).
document.querySelectorAll("input[type=file][data-shows]").forEach(function (input) {
  input.addEventListener("change", function () {
    var shown = document.getElementById(input.dataset.shows);
    if (shown) shown.textContent = input.files.length ? input.files[0].name : "";
  });
});
