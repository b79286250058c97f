/* The owner picker: a combobox (WAI-ARIA Authoring Practices, "list autocomplete").
   As one types, it asks the server (data-user-picker) for matching users and shows them
   in its listbox (data-listbox). Down/Up move through the suggestions (Alt+Down opens
   them), Enter takes the one shown as active, Escape closes the list, and a click takes
   one too; focus stays in the input throughout, which names the active suggestion with
   aria-activedescendant, and a polite live region says how many were found. The input
   holds a user name: the server decides what is saved. Without this file the input is
   plain. */
(function () {
  "use strict";
  if (window.mailboxAdminUserPicker) return; // each picker on a page includes this file
  window.mailboxAdminUserPicker = true;

  function describe(user) {
    var text = [user.full_name, user.email].filter(Boolean).join(" · ");
    return user.active ? text : text + " (inactive)";
  }

  function setUp(input) {
    var listbox = document.getElementById(input.dataset.listbox);
    if (!listbox) return;
    var status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    listbox.parentNode.appendChild(status);
    var timer = null;
    var asked = null;
    var active = -1;

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listbox.id);
    var label = input.labels && input.labels[0];
    listbox.setAttribute("aria-label", (label ? label.textContent : "Users") + " suggestions");

    function options() { return listbox.querySelectorAll('[role="option"]'); }

    function open(shown) {
      shown = shown && options().length > 0;
      listbox.hidden = !shown;
      input.setAttribute("aria-expanded", shown ? "true" : "false");
      if (!shown) setActive(-1);
    }

    function setActive(index) {
      var all = options();
      active = index;
      all.forEach(function (option, i) { option.setAttribute("aria-selected", i === index ? "true" : "false"); });
      if (index >= 0 && all[index]) {
        input.setAttribute("aria-activedescendant", all[index].id);
        all[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(option) {
      input.value = option.dataset.value;
      asked = input.value.trim();
      open(false);
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function show(results) {
      listbox.replaceChildren.apply(listbox, results.map(function (user, i) {
        var option = document.createElement("li");
        option.id = listbox.id + "_" + i;
        option.className = "picker__option";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.value = user.username;
        var name = document.createElement("span");
        name.className = "picker__username";
        name.textContent = user.username;
        var about = document.createElement("span");
        about.className = "picker__about";
        about.textContent = describe(user);
        option.append(name, " ", about);
        return option;
      }));
      active = -1;
      status.textContent = results.length
        ? results.length + (results.length === 1 ? " user found" : " users found") + ": use the arrow keys to choose."
        : "No user found.";
      open(document.activeElement === input);
    }

    function ask() {
      var q = input.value.trim();
      if (q === asked) {
        open(document.activeElement === input);
        return;
      }
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
    input.addEventListener("keydown", function (event) {
      var count = options().length;
      var shown = !listbox.hidden;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (!shown) { ask(); open(true); if (event.altKey) return; }
        if (count) setActive(active + 1 >= count ? 0 : active + 1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        if (!shown) { ask(); open(true); }
        if (count) setActive(active <= 0 ? count - 1 : active - 1);
      } else if (event.key === "Enter" && shown && active >= 0) {
        event.preventDefault(); // take the suggestion, do not submit the form
        choose(options()[active]);
      } else if (event.key === "Escape" && shown) {
        event.preventDefault();
        open(false);
      }
    });
    input.addEventListener("blur", function () { open(false); });
    // mousedown, not click: the input keeps focus (and the list is not closed by blur).
    listbox.addEventListener("mousedown", function (event) {
      var option = event.target.closest('[role="option"]');
      event.preventDefault();
      if (option) choose(option);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-user-picker]").forEach(function (input) {
      if (!input.disabled && !input.readOnly) setUp(input);
    });
  });
})();
