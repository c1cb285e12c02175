// The receipt's print button: shown only where scripts run (the page prints without it too).
document.querySelectorAll(".print-button").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
