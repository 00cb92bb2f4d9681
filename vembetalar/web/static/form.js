// Show the questions the live decision asks for (data-ask on the answer), hide the rest.
// Without JavaScript the server-rendered form already shows the right fields for its answer.
document.addEventListener("htmx:afterSwap", function (event) {
  if (event.target.id !== "preview") return;
  var answer = event.target.querySelector("[data-ask]");
  if (!answer) return;
  var ask = answer.getAttribute("data-ask").split(" ").filter(Boolean);
  document.querySelectorAll("#case-form .field[data-field]").forEach(function (field) {
    var wanted = ask.indexOf(field.getAttribute("data-field")) !== -1;
    var focused = field.contains(document.activeElement);
    field.hidden = !(wanted || focused);
  });
});
