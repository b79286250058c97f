/* Appointments, Contacts, and Tasks offers Server-Side Synchronization only with a server
   profile whose servers carry calendars and contacts (M8): the select names its profile
   drop-down in data-profile-field, each profile option says data-calendars, and each
   method that needs them says data-needs-calendars. When the user picks a profile
   without them, a method it does not allow is replaced by the first one it does (None).
   The page works without this file; the server's validation decides. */
(function () {
  "use strict";

  function calendarsWith(profileSelect) {
    var option = profileSelect.options[profileSelect.selectedIndex];
    // No profile yet: M8 does not apply.
    return !option || !option.value || option.getAttribute("data-calendars") !== "false";
  }

  function offerMethods(select, calendars, replaceChosen) {
    var firstAllowed = null;
    Array.prototype.forEach.call(select.options, function (option) {
      var allowed = calendars || !option.hasAttribute("data-needs-calendars");
      // On load the value shown stays (a refused save explains it); a later change of
      // profile replaces it.
      var keep = !replaceChosen && option.selected;
      option.hidden = !allowed && !keep;
      option.disabled = !allowed && !keep;
      if (allowed && firstAllowed === null) firstAllowed = option;
    });
    var chosen = select.options[select.selectedIndex];
    if (replaceChosen && chosen && chosen.disabled && firstAllowed) {
      select.value = firstAllowed.value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function setUp(select) {
    var form = select.form;
    var profileSelect = form && form.elements.namedItem(select.getAttribute("data-profile-field"));
    if (!profileSelect || profileSelect.tagName !== "SELECT") return;
    profileSelect.addEventListener("change", function () {
      offerMethods(select, calendarsWith(profileSelect), true);
    });
    offerMethods(select, calendarsWith(profileSelect), false);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-profile-field]").forEach(setUp);
  });
})();
