/* While a Test & Enable runs, ask for the mailbox's status and show the results at the
   top of the form as they arrive. Without this script the page says to reload it. */
(function () {
  "use strict";

  function updateFields(fields) {
    Object.keys(fields).forEach(function (name) {
      var input = document.getElementById("id_" + name);
      if (!input) return;
      input.value = fields[name];
      input.setAttribute("value", fields[name]); /* app.css colours by the value attribute */
    });
  }

  /* The test gave the mailbox a new version. When nothing else changed it (the version
     moved by exactly one), the form's version follows, so that Save still works; after
     anyone else's edit, Save is refused as stale, as it should be. */
  function followVersion(version) {
    var input = document.querySelector('#mailbox-form input[name="version"]');
    if (input && Number(input.value) + 1 === version) input.value = String(version);
  }

  function poll(box) {
    window.mailboxAdminPoll(box.getAttribute("data-mailbox-status"), { first: 500, grow: 1.5, most: 5000 },
      function (data) {
        if (data.scheduled) return true;
        var current = document.getElementById("mailbox-status");
        /* Markup the server rendered with every value escaped (messages quote servers). */
        current.outerHTML = data.html;
        updateFields(data.fields);
        followVersion(data.version);
        return false;
      });
  }

  var box = document.querySelector("[data-mailbox-status][data-scheduled]");
  if (box) poll(box);
})();
