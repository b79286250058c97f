/* Server profile form: Authenticate Using offers only the choices the chosen Email Server
   Type allows (P3; each option's data-server-types lists them). Exchange Online allows
   only Server to Server Authentication, which is then chosen, with Microsoft 365 as the
   OAuth provider. The page works without this file; the server's validation decides. */
(function () {
  "use strict";

  function allowedFor(option, serverType) {
    var types = (option.getAttribute("data-server-types") || "").split(" ");
    return !serverType || !option.value || types.indexOf(serverType) !== -1;
  }

  function offerChoices(select, serverType) {
    var firstAllowed = null;
    Array.prototype.forEach.call(select.options, function (option) {
      var allowed = allowedFor(option, serverType);
      option.hidden = !allowed;
      option.disabled = !allowed;
      if (allowed && option.value && firstAllowed === null) firstAllowed = option;
    });
    var chosen = select.options[select.selectedIndex];
    if ((!chosen || chosen.disabled) && firstAllowed) {
      select.value = firstAllowed.value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function setUp(form) {
    var serverType = form.elements.namedItem("server_type");
    if (!serverType) return;
    var update = function () {
      ["incoming_auth", "outgoing_auth"].forEach(function (name) {
        var select = form.elements.namedItem(name);
        if (select) offerChoices(select, serverType.value);
      });
      var provider = form.elements.namedItem("oauth_provider");
      if (provider && serverType.value === "exchange-online" && provider.value !== "microsoft") {
        provider.value = "microsoft";
        provider.dispatchEvent(new Event("change", { bubbles: true }));
      }
    };
    serverType.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.record-form").forEach(setUp);
  });
})();
