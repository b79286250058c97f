/* "Select all N mailboxes that match", as in Django's admin: once every row of the page
   is ticked, a bar offers the whole set the list's filters match (counted on demand at
   data-count-url: the list itself never counts). Choosing it sets select_across=1, and
   the bulk edits then resolve the set from the filters the form carries, not from ids.
   The row commands (Approve Email, …) act on ticked rows only, so they wait meanwhile.
   Without this file the ticked rows are the selection. */
(function () {
  "use strict";

  function setUp(bar) {
    var form = bar.closest("form");
    var across = form.elements.namedItem("select_across");
    var text = bar.querySelector("[data-select-across-text]");
    var selectAll = bar.querySelector("[data-select-across-all]");
    var clear = bar.querySelector("[data-select-across-clear]");
    var count = null;
    var rows = function () { return form.querySelectorAll('input[type="checkbox"][name="selected"]'); };
    var rowCommands = function () {
      return document.querySelectorAll('button[form="' + form.id + '"]:not([formaction])');
    };
    var plural = function (n) { return n.toLocaleString("en") + (n === 1 ? " mailbox" : " mailboxes"); };

    function setAcross(on) {
      across.value = on ? "1" : "0";
      rowCommands().forEach(function (button) {
        button.disabled = on;
        if (on) button.title = "Acts on the ticked rows only: clear the selection of all that match first.";
        else button.removeAttribute("title");
      });
    }

    function show() {
      var all = rows();
      var ticked = Array.prototype.filter.call(all, function (row) { return row.checked; }).length;
      if (!all.length || ticked !== all.length) {
        bar.hidden = true;
        setAcross(false);
        return;
      }
      bar.hidden = false;
      if (across.value === "1") {
        text.textContent = "All " + plural(count) + " that match are selected.";
        selectAll.hidden = true;
        clear.hidden = false;
        return;
      }
      text.textContent = "All " + plural(all.length) + " on this page are selected.";
      clear.hidden = true;
      if (count === null) {
        selectAll.hidden = true;
        fetchCount();
      } else {
        selectAll.textContent = "Select all " + plural(count) + " that match";
        selectAll.hidden = count <= all.length;
      }
    }

    function fetchCount() {
      window.fetch(bar.dataset.countUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data === null) return;
          count = data.count;
          show();
        })
        .catch(function () {});
    }

    form.addEventListener("change", function (event) {
      if (event.target.type === "checkbox") show();
    });
    selectAll.addEventListener("click", function () {
      setAcross(true);
      show();
      clear.focus();
    });
    clear.addEventListener("click", function () {
      form.querySelectorAll('input[type="checkbox"]').forEach(function (box) {
        box.checked = false;
        box.indeterminate = false;
      });
      setAcross(false);
      show();
    });
    setAcross(false); // a page restored from the history starts from its ticked rows
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-select-across]").forEach(setUp);
  });
})();
