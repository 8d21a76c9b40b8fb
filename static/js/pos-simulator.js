// Tranche simulated terminal: drives the terminal API over HTTP like a real device would.
//
// Stable hooks for browser tests (ids; each also has the same data-testid):
//   #secret        the terminal secret field (setup screen); #staff the cashier (optional);
//                  #connect validates it (GET /v1/pos/terminal). The secret may also come from
//                  the URL fragment "#secret=tk_test_..." (kept in sessionStorage, then removed
//                  from the address bar).
//   #terminal-name the connected terminal's name and mode (menu screen)
//   #menu-payment  menu "ALMA" -> "Payment";  #forget forgets the secret
//   #amount        the amount in euros ("300" or "300,00"); #amount-ok goes on
//   #phone         the customer's mobile; #reference optional; #start sends the link
//                  (POST /v1/pos/sessions with an Idempotency-Key)
//   #state         the session's state: attribute data-state="<state code>" (link_sent,
//                  customer_in_progress, paid, refused, cancelled, expired); text = the API's
//                  "message" for the screen
//   #cancel        cancels the sale at once (POST /v1/pos/sessions/<id>/cancel; the red key of a
//                  terminal: no confirmation); #new-sale back to the menu once the sale is over
//   #error         the API's error "message" (role=alert), empty when none
//   #tickets       the printer: one <pre class="ticket" data-kind="in_progress|customer|merchant">
//                  per printed ticket (48 columns)
//   body[data-session-id] the current session's id, once started
//
// Polling: GET /v1/pos/sessions/<id>?wait=<n> with If-None-Match: <ETag>; 304 -> ask again,
// 200 -> show the new state and print the tickets that became available.
(function () {
  "use strict";
  var script = document.getElementById("pos-simulator-script");
  var API = (script && script.dataset.apiRoot) || "/";
  var WAIT = Math.max(0, Math.min(20, parseInt((script && script.dataset.wait) || "20", 10) || 20));
  var STRINGS = JSON.parse(document.getElementById("pos-strings").textContent);
  var LANG = (document.documentElement.lang || "fr").slice(0, 2) === "en" ? "en" : "fr";
  var STORE_SECRET = "tranche.pos.secret";
  var STORE_STAFF = "tranche.pos.staff";
  var STORE_SESSION = "tranche.pos.session";
  var OPEN = ["started", "link_sent", "customer_in_progress"];

  var $ = function (id) { return document.getElementById(id); };
  var store = window.sessionStorage;
  var state = {
    secret: "",
    amountCents: null,
    session: null,
    etag: null,
    pollGeneration: 0,
    printed: {},
    pending: null // {body: "...", key: "..."}: a start to repeat with the same Idempotency-Key
  };

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  }

  function show(name) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-screen]"), function (el) {
      el.hidden = el.dataset.screen !== name;
    });
    document.body.dataset.screen = name;
    var first = document.querySelector("[data-screen='" + name + "'] input");
    if (first) { first.focus(); }
  }

  function error(message) { $("error").textContent = message || ""; }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // One HTTP call to the terminal API. Resolves {status, data, etag}; rejects on network errors.
  function call(method, path, options) {
    options = options || {};
    var headers = {
      "Authorization": "Terminal " + state.secret,
      "Accept": "application/json",
      "Accept-Language": LANG
    };
    if (options.body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (options.key) { headers["Idempotency-Key"] = options.key; }
    if (options.etag) { headers["If-None-Match"] = options.etag; }
    return fetch(API + path.replace(/^\//, ""), {
      method: method,
      headers: headers,
      body: options.body,
      cache: "no-store",
      credentials: "omit"
    }).then(function (response) {
      $("led").classList.add("on");
      var etag = response.headers.get("ETag");
      if (response.status === 304 || response.status === 204) {
        return { status: response.status, data: null, etag: etag };
      }
      return response.json().catch(function () { return null; }).then(function (data) {
        return { status: response.status, data: data, etag: etag };
      });
    }, function (failure) {
      $("led").classList.remove("on");
      throw failure;
    });
  }

  function apiMessage(answer) {
    if (answer.data && answer.data.message) { return answer.data.message; }
    return fmt(STRINGS.unexpected, { status: answer.status });
  }

  // --- setup ---------------------------------------------------------------------------------

  function connect() {
    error("");
    if (!state.secret) { show("setup"); return; }
    $("connect").disabled = true;
    call("GET", "v1/pos/terminal").then(function (answer) {
      $("connect").disabled = false;
      if (answer.status !== 200) {
        show("setup");
        error(apiMessage(answer));
        return;
      }
      store.setItem(STORE_SECRET, state.secret);
      var name = answer.data.name + (answer.data.shop ? " · " + answer.data.shop : "");
      $("terminal-name").textContent = fmt(STRINGS.connected, { name: name, mode: answer.data.mode });
      var resumed = store.getItem(STORE_SESSION);
      if (resumed) { resume(resumed); } else { show("menu"); }
    }, function () {
      $("connect").disabled = false;
      show("setup");
      error(STRINGS.network);
    });
  }

  $("setup-form").addEventListener("submit", function (event) {
    event.preventDefault();
    state.secret = $("secret").value.trim();
    store.setItem(STORE_STAFF, $("staff").value.trim());
    if (!state.secret) { error(STRINGS.secret_missing); return; }
    connect();
  });

  $("forget").addEventListener("click", function () {
    store.removeItem(STORE_SECRET);
    store.removeItem(STORE_SESSION);
    state.secret = "";
    $("secret").value = "";
    error("");
    show("setup");
  });

  // --- the sale ------------------------------------------------------------------------------

  $("menu-payment").addEventListener("click", function () {
    error("");
    $("amount").value = "";
    show("amount");
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-back]"), function (button) {
    button.addEventListener("click", function () { error(""); show(button.dataset.back); });
  });

  // "300", "300,5", "300.50", "1 250,00" -> cents, exactly (no floating point).
  function parseCents(raw) {
    var text = raw.replace(/[\s\u00a0\u202f€]/g, "");
    var match = /^(\d{1,7})(?:[.,](\d{1,2}))?$/.exec(text);
    if (!match) { return null; }
    var cents = parseInt(match[1], 10) * 100;
    if (match[2]) { cents += parseInt((match[2] + "0").slice(0, 2), 10); }
    return cents;
  }

  function euros(cents) {
    var whole = Math.floor(cents / 100);
    var rest = ("0" + (cents % 100)).slice(-2);
    return (LANG === "en" ? "€" + whole + "." + rest : whole + "," + rest + " €");
  }

  $("amount-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var cents = parseCents($("amount").value);
    if (!cents) { error(STRINGS.amount_invalid); return; }
    error("");
    state.amountCents = cents;
    $("amount-recap").textContent = euros(cents);
    $("phone").value = "";
    $("reference").value = "";
    show("phone");
  });

  $("phone-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var phone = $("phone").value.trim();
    if (!phone) { error(STRINGS.phone_missing); return; }
    var payload = { amount: state.amountCents, phone: phone };
    var reference = $("reference").value.trim();
    var staff = store.getItem(STORE_STAFF) || "";
    if (reference) { payload.reference = reference; }
    if (staff) { payload.staff = staff; }
    var body = JSON.stringify(payload);
    // The same sale sent again (a retry after a lost answer) keeps its Idempotency-Key.
    if (!state.pending || state.pending.body !== body) { state.pending = { body: body, key: newKey() }; }
    error(STRINGS.starting);
    $("start").disabled = true;
    call("POST", "v1/pos/sessions", { body: body, key: state.pending.key }).then(function (answer) {
      $("start").disabled = false;
      if (answer.status === 200 || answer.status === 201) {
        state.pending = null;
        error("");
        begin(answer.data, answer.etag);
        return;
      }
      if (answer.status < 500) { state.pending = null; } // refused: a corrected sale is a new one
      error(apiMessage(answer));
    }, function () {
      $("start").disabled = false;
      error(STRINGS.network);
    });
  });

  function clearTickets() {
    state.printed = {};
    Array.prototype.forEach.call(document.querySelectorAll("#tickets pre.ticket, #tickets a.ticket-pdf"), function (el) { el.remove(); });
    $("no-ticket").hidden = false;
  }

  function begin(session, etag) {
    clearTickets();
    store.setItem(STORE_SESSION, session.id);
    render(session, etag);
    show("session");
    poll();
  }

  function resume(sessionId) {
    clearTickets();
    call("GET", "v1/pos/sessions/" + encodeURIComponent(sessionId)).then(function (answer) {
      if (answer.status !== 200) { store.removeItem(STORE_SESSION); show("menu"); return; }
      render(answer.data, answer.etag);
      show("session");
      poll();
    }, function () { show("menu"); error(STRINGS.network); });
  }

  function render(session, etag) {
    state.session = session;
    if (etag) { state.etag = etag; }
    document.body.dataset.sessionId = session.id;
    var el = $("state");
    el.dataset.state = session.state;
    el.textContent = session.message || session.state;
    var code = document.createElement("span");
    code.className = "state-code";
    code.textContent = session.state.replace(/_/g, " ");
    el.appendChild(code);
    var facts = euros(session.amount);
    if (session.payment && session.payment.installments_count) {
      facts += " · " + session.payment.installments_count + "x";
    }
    $("session-facts").textContent = facts;
    var open = OPEN.indexOf(session.state) >= 0;
    $("cancel").hidden = !(open || session.state === "refused");
    $("new-sale").hidden = open;
    if (!open) { store.removeItem(STORE_SESSION); }
    printNew(session);
  }

  // Print the tickets the session lists that were not printed yet (once each).
  function printNew(session) {
    var wanted = (session.tickets || []).map(function (t) { return t.kind; }).filter(function (kind) {
      return !state.printed[kind];
    });
    if (!wanted.length) { return; }
    wanted.forEach(function (kind) { state.printed[kind] = "pending"; });
    var sessionId = session.id;
    call("GET", "v1/pos/sessions/" + encodeURIComponent(sessionId) + "/tickets?lang=" + LANG).then(function (answer) {
      if (!state.session || state.session.id !== sessionId) { return; }
      if (answer.status !== 200) {
        wanted.forEach(function (kind) { delete state.printed[kind]; });
        error(apiMessage(answer));
        return;
      }
      (answer.data.data || []).forEach(function (ticket) {
        if (state.printed[ticket.kind] === true) { return; }
        state.printed[ticket.kind] = true;
        var pre = document.createElement("pre");
        pre.className = "ticket";
        pre.dataset.kind = ticket.kind;
        pre.dataset.testid = "ticket-" + ticket.kind;
        pre.textContent = ticket.text_48;
        $("tickets").insertBefore(pre, $("tickets").firstChild);
      });
      $("no-ticket").hidden = true;
    }, function () {
      wanted.forEach(function (kind) { delete state.printed[kind]; });
    });
  }

  function poll() {
    var generation = ++state.pollGeneration;
    var session = state.session;
    if (!session) { return; }
    var keepGoing = OPEN.indexOf(session.state) >= 0 || session.state === "refused";
    if (!keepGoing) { return; }
    call("GET", "v1/pos/sessions/" + encodeURIComponent(session.id) + "?wait=" + WAIT, { etag: state.etag })
      .then(function (answer) {
        if (generation !== state.pollGeneration) { return; }
        if (answer.status === 200) {
          error("");
          render(answer.data, answer.etag);
          poll();
        } else if (answer.status === 304) {
          poll();
        } else {
          error(apiMessage(answer));
          if (answer.status >= 500 || answer.status === 429) { setTimeout(poll, 2000); }
        }
      }, function () {
        if (generation !== state.pollGeneration) { return; }
        error(STRINGS.network);
        setTimeout(function () { if (generation === state.pollGeneration) { poll(); } }, 2000);
      });
  }

  $("cancel").addEventListener("click", function () {
    var session = state.session;
    if (!session) { return; }
    $("cancel").disabled = true;
    error(STRINGS.cancelling);
    call("POST", "v1/pos/sessions/" + encodeURIComponent(session.id) + "/cancel", { body: "{}", key: newKey() })
      .then(function (answer) {
        $("cancel").disabled = false;
        if (answer.status === 200) {
          error("");
          state.pollGeneration++; // the long poll in flight is stale now
          render(answer.data, answer.etag);
        } else {
          error(apiMessage(answer));
        }
      }, function () {
        $("cancel").disabled = false;
        error(STRINGS.network);
      });
  });

  $("new-sale").addEventListener("click", function () {
    state.pollGeneration++;
    state.session = null;
    state.etag = null;
    delete document.body.dataset.sessionId;
    store.removeItem(STORE_SESSION);
    error("");
    show("menu");
  });

  // --- the keypad ----------------------------------------------------------------------------

  var lastField = null;
  document.addEventListener("focusin", function (event) {
    if (event.target.tagName === "INPUT") { lastField = event.target; }
  });
  Array.prototype.forEach.call(document.querySelectorAll(".keypad button"), function (button) {
    button.addEventListener("mousedown", function (event) { event.preventDefault(); }); // keep focus
    button.addEventListener("click", function () {
      var key = button.dataset.key;
      var screen = document.body.dataset.screen;
      if (key === "cancel") {
        if (screen === "session") { if (!$("cancel").hidden) { $("cancel").click(); } return; }
        if (screen === "amount" || screen === "phone") { error(""); show("menu"); }
        return;
      }
      if (key === "ok") {
        var form = document.querySelector("[data-screen='" + screen + "'] form");
        if (form) { form.requestSubmit(); } else if (screen === "menu") { $("menu-payment").click(); }
        return;
      }
      var field = lastField && !lastField.closest("[hidden]") ? lastField : document.querySelector("[data-screen='" + screen + "'] input");
      if (!field) { return; }
      if (key === "clear") { field.value = field.value.slice(0, -1); } else { field.value += key; }
      field.focus();
    });
  });

  // --- start ---------------------------------------------------------------------------------

  var fragment = /(?:^#|&)secret=([^&]+)/.exec(window.location.hash);
  if (fragment) {
    state.secret = decodeURIComponent(fragment[1]);
    store.removeItem(STORE_SESSION);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  } else {
    state.secret = store.getItem(STORE_SECRET) || "";
  }
  $("secret").value = state.secret;
  $("staff").value = store.getItem(STORE_STAFF) || "";
  if (state.secret) { connect(); } else { show("setup"); }
})();
