// The print view's button (no inline script: the CSP allows none).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-button");
  if (button) button.addEventListener("click", function () { window.print(); });
});
