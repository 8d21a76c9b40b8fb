// Tranche dashboard, one in-store sale: follows its state without reloading the page.
// Polls the status URL (#pos-status[data-status-url]) every data-poll-ms with If-None-Match:
// 304 means nothing changed; 200 brings the status block again (steps, tickets, links) and
// whether the sale may still be cancelled. Stops once the sale is over (paid, cancelled,
// expired; a refused sale is still followed: the customer may pay in full).
(function () {
  "use strict";
  var box = document.getElementById("pos-status");
  if (!box || !window.fetch) { return; }
  var cancel = document.getElementById("pos-cancel");
  var note = document.getElementById("pos-poll-note");
  var url = box.dataset.statusUrl;
  var etag = box.dataset.etag;
  var every = parseInt(box.dataset.pollMs, 10) || 2000;
  var over = ["paid", "cancelled", "expired"];
  var stateNow = (document.getElementById("session-state") || {}).dataset;
  if (stateNow && over.indexOf(stateNow.state) >= 0) { return; }

  function later(delay) { setTimeout(poll, delay); }

  function poll() {
    fetch(url, {
      headers: { "If-None-Match": etag, "Accept": "application/json" },
      cache: "no-store",
      credentials: "same-origin"
    }).then(function (response) {
      note.hidden = true;
      if (response.status === 304) { later(every); return null; }
      if (!response.ok) { note.hidden = false; later(every * 3); return null; }
      etag = response.headers.get("ETag") || etag;
      return response.json().then(function (data) {
        box.innerHTML = data.html;
        box.dataset.etag = etag;
        box.dataset.final = data.final ? "true" : "false";
        if (cancel) { cancel.hidden = !data.cancellable; }
        if (over.indexOf(data.state) < 0) { later(every); }
      });
    }).catch(function () {
      note.hidden = false;
      later(every * 3);
    });
  }
  later(every);
})();
