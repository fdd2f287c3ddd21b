// plan-worker console: asks before an action. Forms with data-confirm
// submit only when the operator says yes; without this script they
// submit at once (the CSRF token and the Origin check still apply).
document.addEventListener("submit", function (e) {
  var form = e.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    e.preventDefault();
  }
});
