/* The owner picker: as one types a user name, ask the server for matching users and
   offer them in the input's <datalist> (the browser shows the list and handles the
   keyboard). The server decides what is saved; without this file the input is plain. */
(function () {
  "use strict";
  if (window.mailboxAdminUserPicker) return; // each picker on a page includes this file
  window.mailboxAdminUserPicker = true;

  function describe(user) {
    var text = [user.full_name, user.email].filter(Boolean).join(" · ");
    return user.active ? text : text + " (inactive)";
  }

  function setUp(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null;
    var asked = null;
    if (!list) return;

    function show(results) {
      list.replaceChildren.apply(list, results.map(function (user) {
        var option = document.createElement("option");
        option.value = user.username;
        option.textContent = describe(user);
        return option;
      }));
    }

    function ask() {
      var q = input.value.trim();
      if (q === asked) return;
      asked = q;
      fetch(input.dataset.userPicker + "?q=" + encodeURIComponent(q), {
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data && asked === q) show(data.results); })
        .catch(function () { /* no suggestions; typing a user name still works */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    });
    input.addEventListener("focus", ask);
  }

  document.querySelectorAll("input[data-user-picker]").forEach(function (input) {
    if (!input.disabled && !input.readOnly) setUp(input);
  });
})();
