/* Test Connection runs in the background: poll its result and show it where the page
   says "Testing…". Without this script the page links to the result instead. */
(function () {
  "use strict";

  function show(box, results) {
    var list = box.querySelector(".connection-test__results");
    list.textContent = "";
    results.forEach(function (line) {
      var item = document.createElement("li");
      item.className = "message message--" + (line.ok ? "success" : "error");
      if (!line.ok) item.setAttribute("role", "alert");
      item.textContent = line.text; /* text, never markup: messages quote servers */
      list.appendChild(item);
    });
  }

  document.querySelectorAll("[data-connection-test]").forEach(function (box) {
    if (!box.querySelector("[data-connection-test-pending]")) return;
    window.mailboxAdminPoll(box.getAttribute("data-connection-test"), { first: 400, grow: 1.5, most: 3000 },
      function (data) {
        if (!data.finished) return true;
        show(box, data.results);
        return false;
      });
  });
})();
