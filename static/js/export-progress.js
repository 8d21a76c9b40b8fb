/* An export's page while its files are built: asks the page's JSON every second and moves
   the progress bar; reloads once the export is done or failed (to show the links or the
   error). Without JavaScript, a <meta refresh> in <noscript> reloads the page instead. */
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box) return;
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("export-progress");
  var text = document.getElementById("export-progress-text");
  var badge = document.getElementById("export-status");
  var help = box.querySelector("[data-of-template]");
  var template = help ? help.getAttribute("data-of-template") : "{done} / {total}";
  var format = function (n) {
    return new Intl.NumberFormat(document.documentElement.lang || undefined).format(n);
  };

  function show(state) {
    if (state.rows_total !== null && state.rows_total !== undefined) {
      bar.max = Math.max(state.rows_total, 1);
      bar.value = Math.min(state.rows_done, bar.max);
      bar.textContent = state.rows_done;
      text.textContent = template
        .replace("{done}", format(state.rows_done))
        .replace("{total}", format(state.rows_total));
    }
    if (badge && state.status_label) {
      badge.textContent = state.status_label;
      badge.className = "badge " + state.status;
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (state) {
        show(state);
        if (state.status === "done" || state.status === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000); // offline or a hiccup: try again, more slowly
      });
  }

  window.setTimeout(poll, 1000);
})();
