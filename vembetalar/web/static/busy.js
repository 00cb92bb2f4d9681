// A form that may take a while (an invoice run over a large month) says that it is working and
// is not sent twice: its button is disabled and its status line tells what is going on. Without
// JavaScript the form works as before.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var text = form.getAttribute("data-busy");
  if (!text || event.defaultPrevented) return;
  form.querySelectorAll("button[type=submit]").forEach(function (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  });
  var status = form.querySelector("[data-busy-status]");
  if (status) status.textContent = text;
});
