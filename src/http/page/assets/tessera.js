// tessera's page: the little that needs script. Everything works without it (forms post,
// destructive actions go through a confirmation page); with it:
// - the user search runs as you type (the same GET form, fetched, its result list swapped in);
// - a button with data-confirm asks first and, when confirmed, skips the confirmation page.
// Served from the binary under the Content-Security-Policy `script-src 'self'`.
"use strict";

(function () {
  var search = document.querySelector("form[data-live-search]");
  if (search) {
    var input = search.querySelector("input[type=search]");
    var target = document.getElementById("results");
    var timer = null;
    var last = input ? input.value : "";
    if (input && target && window.fetch) {
      input.addEventListener("input", function () {
        if (timer) { clearTimeout(timer); }
        timer = setTimeout(function () {
          var q = input.value.trim();
          if (q === last) { return; }
          last = q;
          var url = search.getAttribute("action") + "?q=" + encodeURIComponent(q) + "&partial=1";
          fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
            .then(function (r) { return r.ok ? r.text() : null; })
            .then(function (html) {
              if (html !== null && q === last) {
                var doc = new DOMParser().parseFromString(html, "text/html");
                var fresh = doc.getElementById("results");
                if (fresh) { target.replaceChildren.apply(target, Array.from(fresh.childNodes)); }
              }
            })
            .catch(function () { /* the form still works on enter */ });
        }, 250);
      });
    }
  }

  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
        return;
      }
      var form = button.form;
      if (form) {
        var confirmed = form.querySelector("input[name=confirmed]");
        if (confirmed) { confirmed.value = "1"; }
      }
    });
  });
})();
