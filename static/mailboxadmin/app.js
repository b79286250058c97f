/* Mailbox Admin: small progressive enhancements. Every page works without this file;
   the server's validation decides what is saved. */
(function () {
  "use strict";

  /* Ask `url` for JSON, first after `options.first` ms, until `handle(data)` returns
     false; each next wait `options.grow` times longer, at most `options.most` ms. After a
     network or server error it waits twice as long (at most 15 s) and asks again; after
     a 4xx (the result is gone, or not ours to read) it stops. Used by the pages whose
     work runs in the background (Test Connection, Test & Enable, bulk actions). */
  window.mailboxAdminPoll = function (url, options, handle) {
    var delay = options.first;
    function later(factor, most) {
      delay = Math.min(delay * factor, most);
      window.setTimeout(ask, delay);
    }
    function ask() {
      window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status >= 400 && response.status < 500) return null;
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (data !== null && handle(data)) later(options.grow, options.most);
        })
        .catch(function () { later(2, 15000); });
    }
    window.setTimeout(ask, delay);
  };

  /* "Select all" checkbox of a list: data-select-all="<name of the row checkboxes>". */
  function setUpSelectAll(box) {
    var form = box.form;
    if (!form) return;
    var rows = function () {
      return form.querySelectorAll('input[type="checkbox"][name="' + box.dataset.selectAll + '"]');
    };
    box.addEventListener("change", function () {
      rows().forEach(function (row) { row.checked = box.checked; });
    });
    form.addEventListener("change", function (event) {
      if (event.target === box) return;
      var all = rows();
      var checked = Array.prototype.filter.call(all, function (row) { return row.checked; }).length;
      box.checked = all.length > 0 && checked === all.length;
      box.indeterminate = checked > 0 && checked < all.length;
    });
  }

  /* Fields that apply only in some cases: data-show-if='{"field": ["value", ...], ...}'.
     A condition names another field of the same form; "field.attr" means the data-attr
     of the chosen option of a select. A checkbox's value is "true" or "false". A hidden
     field's value is still sent (the server ignores what does not apply), except with
     data-off-when-hidden: its inputs are disabled, so a hidden yes/no option reads No.
     A field showing an error is never hidden. */
  function valueOf(form, key) {
    var parts = key.split(".");
    var input = form.elements.namedItem(parts[0]);
    if (!input) return null;
    if (input.type === "checkbox") return input.checked ? "true" : "false";
    if (parts.length > 1 && input.tagName === "SELECT") {
      var option = input.options[input.selectedIndex];
      return (option && option.getAttribute("data-" + parts[1])) || "";
    }
    return input.value;
  }

  function applies(form, element) {
    var conditions = JSON.parse(element.dataset.showIf);
    return Object.keys(conditions).every(function (key) {
      var value = valueOf(form, key);
      return value === null || conditions[key].indexOf(value) !== -1;
    });
  }

  function setShown(element, shown) {
    if (element.classList.contains("field--error")) shown = true;
    element.hidden = !shown;
    if (!element.hasAttribute("data-off-when-hidden")) return;
    element.querySelectorAll("input, select, textarea").forEach(function (input) {
      if (!shown && !input.disabled) {
        input.disabled = true;
        input.dataset.hiddenByScript = "true";
      } else if (shown && input.dataset.hiddenByScript) {
        input.disabled = false;
        delete input.dataset.hiddenByScript;
      }
    });
  }

  function setUpConditionalFields(form) {
    var dependent = form.querySelectorAll("[data-show-if]");
    if (!dependent.length) return;
    var update = function () {
      dependent.forEach(function (element) { setShown(element, applies(form, element)); });
    };
    form.addEventListener("change", update);
    update();
  }

  /* After a refused save, focus the error summary (a screen reader reads it, the keyboard
     starts there); each of its links moves focus to the field it names. */
  function setUpErrorSummary(summary) {
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-focus-field]");
      if (!link) return;
      var input = document.getElementById(link.getAttribute("href").slice(1));
      if (!input) return;
      event.preventDefault();
      input.scrollIntoView({ block: "center" });
      input.focus();
    });
    summary.focus();
  }

  /* On a narrow screen the sections fold behind Menu (app.css shows the button there). */
  function setUpMenu(button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-select-all]").forEach(setUpSelectAll);
    document.querySelectorAll("form.record-form").forEach(setUpConditionalFields);
    document.querySelectorAll(".topbar__toggle").forEach(setUpMenu);
    var summary = document.querySelector("[data-focus-on-load]");
    if (summary) setUpErrorSummary(summary);
  });
})();
