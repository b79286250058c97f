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

  function poll(box) {
    var url = box.getAttribute("data-connection-test");
    var delay = 400;
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
          if (data.finished) show(box, data.results);
          else again(1.5, 3000);
        })
        .catch(function () { again(2, 10000); });
    }
    window.setTimeout(tick, delay);
  }

  document.querySelectorAll("[data-connection-test]").forEach(function (box) {
    if (box.querySelector("[data-connection-test-pending]")) poll(box);
  });
})();
