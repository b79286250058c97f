/* A bulk action running in the background: show its progress, and reload the page (which
   then lists the result) when it has finished. Without this script, "Reload" does it. */
(function () {
  "use strict";

  document.querySelectorAll("[data-bulk-job-pending]").forEach(function (box) {
    var progress = box.querySelector(".bulk-job__progress");
    window.mailboxAdminPoll(box.getAttribute("data-bulk-job"), { first: 1000, grow: 1.2, most: 5000 },
      function (data) {
        progress.textContent = data.done + " / " + data.total;
        if (!data.finished) return true;
        window.location.reload();
        return false;
      });
  });
})();
