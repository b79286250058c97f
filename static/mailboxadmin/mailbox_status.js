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
    var url = box.getAttribute("data-mailbox-status");
    var delay = 500;
    function again(factor, most) {
      delay = Math.min(delay * factor, most);
      window.setTimeout(tick, delay);
    }
    function tick() {
      window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status >= 400 && response.status < 500) return null; /* gone or not ours: stop */
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (data === null) return;
          if (data.scheduled) return again(1.5, 5000);
          var current = document.getElementById("mailbox-status");
          /* Markup the server rendered with every value escaped (messages quote servers). */
          current.outerHTML = data.html;
          updateFields(data.fields);
          followVersion(data.version);
        })
        .catch(function () { again(2, 15000); });
    }
    window.setTimeout(tick, delay);
  }

  var box = document.querySelector("[data-mailbox-status][data-scheduled]");
  if (box) poll(box);
})();
