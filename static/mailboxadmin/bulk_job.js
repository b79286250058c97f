/* A bulk action running in the background: show its progress, and reload the page (which
   then lists the result) when it has finished. Without this script, "Reload" does it. */
(function () {
  "use strict";

  function poll(box) {
    var url = box.getAttribute("data-bulk-job");
    var progress = box.querySelector(".bulk-job__progress");
    var delay = 1000;
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
          progress.textContent = data.done + " / " + data.total;
          if (data.finished) window.location.reload();
          else again(1.2, 5000);
        })
        .catch(function () { again(2, 15000); });
    }
    window.setTimeout(tick, delay);
  }

  document.querySelectorAll("[data-bulk-job-pending]").forEach(poll);
})();
