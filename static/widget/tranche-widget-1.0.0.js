/*! Tranche widget 1.0.0 | split and deferred payment offers for merchant pages | no dependencies
 *
 * Declarative:
 *   <link rel="stylesheet" href="https://tranche.example/static/widget/tranche-widget-1.0.0.css">
 *   <script src="https://tranche.example/static/widget/tranche-widget-1.0.0.js" defer></script>
 *   <div data-tranche-widget data-merchant-id="merchant_..." data-amount="45000"
 *        data-plans="1,3,4,10,1+30d" data-locale="fr"></div>
 *
 * Programmatic:
 *   const widget = Tranche.widget(element, {merchantId, amount, plans, locale, apiRoot});
 *   widget.update({amount: 52000});
 *
 * Setting data-amount (or data-plans, data-locale) on the element re-renders it too.
 * Plans: "3" is 3 instalments, "1+15d" one instalment deferred 15 days, "1+1m" deferred 1 month.
 */
(function (window, document) {
  'use strict';

  var VERSION = '1.0.0';

  // Every user-facing string, in one place. {name} placeholders are filled by t().
  var STRINGS = {
    fr: {
      loading: 'Chargement des options de paiement Tranche…',
      headlineCounts: 'Payez en {plans} avec Tranche',
      headlineOther: 'Payez {plan} avec Tranche',
      headlineGeneric: 'Payez avec Tranche',
      countShort: '{n}x',
      deferredDaysShort: 'J+{n}',
      deferredMonthsShort: 'M+{n}',
      planInOne: 'en une fois',
      planCount: 'en {n} fois',
      planDays: 'dans {n} jours',
      planMonths: 'dans {n} mois',
      pillHint: '{plan}, voir l’échéancier',
      summaryOnce: '{amount} en une fois',
      summaryDeferred: '{amount} le {date}',
      summaryTimes: '{n} × {amount}',
      then: 'puis',
      or: 'ou',
      noFeesSuffix: '{summary} sans frais',
      from: 'Dès {amount}',
      upTo: 'Jusqu’à {amount}',
      unavailable: 'Indisponible',
      noneFrom: 'Paiement en plusieurs fois avec Tranche dès {amount}',
      noneUpTo: 'Paiement en plusieurs fois avec Tranche jusqu’à {amount}',
      noneAvailable: 'Paiement en plusieurs fois avec Tranche indisponible pour ce montant',
      dialogTitle: 'Payer en plusieurs fois avec Tranche',
      plansLabel: 'Formules de paiement',
      close: 'Fermer',
      schedule: 'Échéancier',
      includingFees: 'dont frais\u00a0: {amount}',
      creditCost: 'Coût du crédit',
      noFees: 'Sans frais',
      totalPaid: 'Montant total dû',
      apr: 'TAEG fixe\u00a0: {rate}',
      legal: 'Un crédit vous engage et doit être remboursé. Vérifiez vos capacités de remboursement avant de vous engager.',
      approval: 'Sous réserve d’acceptation par Tranche.'
    },
    en: {
      loading: 'Loading Tranche payment options…',
      headlineCounts: 'Pay in {plans} instalments with Tranche',
      headlineOther: 'Pay {plan} with Tranche',
      headlineGeneric: 'Pay with Tranche',
      countShort: '{n}x',
      deferredDaysShort: 'D+{n}',
      deferredMonthsShort: 'M+{n}',
      planInOne: 'in one payment',
      planCount: 'in {n} instalments',
      planDays: 'in {n} days',
      planMonths: 'in {n} months',
      pillHint: '{plan}, see the schedule',
      summaryOnce: '{amount} in one payment',
      summaryDeferred: '{amount} on {date}',
      summaryTimes: '{n} × {amount}',
      then: 'then',
      or: 'or',
      noFeesSuffix: '{summary}, no fees',
      from: 'From {amount}',
      upTo: 'Up to {amount}',
      unavailable: 'Unavailable',
      noneFrom: 'Pay in instalments with Tranche from {amount}',
      noneUpTo: 'Pay in instalments with Tranche up to {amount}',
      noneAvailable: 'Pay in instalments with Tranche is unavailable for this amount',
      dialogTitle: 'Pay in instalments with Tranche',
      plansLabel: 'Payment plans',
      close: 'Close',
      schedule: 'Payment schedule',
      includingFees: 'including {amount} fees',
      creditCost: 'Cost of credit',
      noFees: 'No fees',
      totalPaid: 'Total amount payable',
      apr: 'Fixed APR: {rate}',
      legal: 'Borrowing is a commitment and must be repaid. Check that you can afford the repayments before committing.',
      approval: 'Subject to approval by Tranche.'
    }
  };
  var INTL_LOCALES = { fr: 'fr-FR', en: 'en-GB' };
  var DEFAULT_PLANS = '3,4';
  var DEBOUNCE_MS = 150;
  var CACHE_MS = 5 * 60 * 1000;
  var CACHE_SIZE = 20;
  var ENDPOINT = '/v2/payments/eligibility';
  var OBSERVED_ATTRIBUTES = ['data-amount', 'data-plans', 'data-locale', 'data-merchant-id', 'data-api-root'];

  // document.currentScript only exists while this file runs, so read it now.
  var SCRIPT_ORIGIN = (function () {
    var script = document.currentScript;
    if (!script) {
      var scripts = document.querySelectorAll('script[src*="tranche-widget"]');
      script = scripts[scripts.length - 1];
    }
    try {
      return script ? new URL(script.src, window.location.href).origin : window.location.origin;
    } catch (error) {
      return window.location.origin;
    }
  })();

  var instances = new WeakMap();
  var nextId = 0;

  // ---------------------------------------------------------------- small helpers

  function t(locale, key, values) {
    var text = (STRINGS[locale] || STRINGS.fr)[key];
    return text.replace(/\{(\w+)\}/g, function (match, name) {
      return values && name in values ? String(values[name]) : match;
    });
  }

  function normaliseLocale(value) {
    var code = String(value || '').trim().toLowerCase().split(/[-_]/)[0];
    return STRINGS[code] ? code : 'fr';
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Writes text into parent with the brand name styled as the logo.
  function withLogo(parent, text) {
    text.split('Tranche').forEach(function (piece, index) {
      if (index > 0) parent.appendChild(el('span', 'tranche-logo', 'Tranche'));
      if (piece) parent.appendChild(document.createTextNode(piece));
    });
    return parent;
  }

  function capitalise(text, locale) {
    return text ? text.charAt(0).toLocaleUpperCase(INTL_LOCALES[locale]) + text.slice(1) : text;
  }

  function isCents(value) {
    return typeof value === 'number' && Number.isSafeInteger(value);
  }

  var formatters = {};
  function formatter(locale, whole) {
    var key = locale + (whole ? ':whole' : '');
    if (!formatters[key]) {
      formatters[key] = new Intl.NumberFormat(INTL_LOCALES[locale], {
        style: 'currency',
        currency: 'EUR',
        minimumFractionDigits: whole ? 0 : 2,
        maximumFractionDigits: whole ? 0 : 2
      });
    }
    return formatters[key];
  }

  // Integer cents to "1 290,00 €" / "€1,290.00". Only whole euros go through Intl; the cents are
  // spliced in as digits, so no binary fraction ever reaches the screen.
  function formatMoney(cents, locale, options) {
    var negative = cents < 0;
    var absolute = Math.abs(cents);
    var units = Math.floor(absolute / 100);
    var rest = absolute % 100;
    if (options && options.wholeWhenRound && rest === 0) {
      return formatter(locale, true).format(negative ? -units : units);
    }
    return formatter(locale, false)
      .formatToParts(negative ? -units : units)
      .map(function (part) {
        return part.type === 'fraction' ? (rest < 10 ? '0' : '') + rest : part.value;
      })
      .join('');
  }

  // Basis points to "23,30 %" / "23.30%", with integer arithmetic.
  function formatRate(bps, locale) {
    var units = Math.floor(bps / 100);
    var rest = bps % 100;
    var integer = new Intl.NumberFormat(INTL_LOCALES[locale]).format(units);
    var number = integer + (locale === 'fr' ? ',' : '.') + (rest < 10 ? '0' : '') + rest;
    return locale === 'fr' ? number + '\u00a0%' : number + '%';
  }

  function joinAlternatives(items, locale) {
    if (items.length < 2) return items.join('');
    if (window.Intl && Intl.ListFormat) {
      return new Intl.ListFormat(INTL_LOCALES[locale], { type: 'disjunction' }).format(items);
    }
    return items.slice(0, -1).join(', ') + ' ' + t(locale, 'or') + ' ' + items[items.length - 1];
  }

  // "1,3,4,10,1+15d,1+1m" -> [{installments_count, deferred_days, deferred_months}, ...]
  function parsePlans(spec) {
    var plans = [];
    var seen = {};
    String(spec || DEFAULT_PLANS).split(',').forEach(function (token) {
      var text = token.trim().toLowerCase();
      if (!text) return;
      var match = /^(\d{1,2})(?:\+(\d{1,3})([dm]))?$/.exec(text);
      if (!match || Number(match[1]) < 1) {
        console.warn('[Tranche] ignored plan "' + token.trim() + '": expected N, N+Dd or N+Mm');
        return;
      }
      var plan = {
        installments_count: Number(match[1]),
        deferred_days: match[3] === 'd' ? Number(match[2]) : 0,
        deferred_months: match[3] === 'm' ? Number(match[2]) : 0
      };
      var key = planKey(plan);
      if (!seen[key]) {
        seen[key] = true;
        plans.push(plan);
      }
    });
    return plans;
  }

  function planKey(plan) {
    return plan.installments_count + ':' + plan.deferred_days + ':' + plan.deferred_months;
  }

  function isDeferred(plan) {
    return plan.deferred_days > 0 || plan.deferred_months > 0;
  }

  function parseAmount(value) {
    var text = String(value === undefined || value === null ? '' : value).trim();
    return /^\d{1,12}$/.test(text) ? Number(text) : NaN;
  }

  function shortLabel(plan, locale) {
    if (plan.deferred_days > 0) return t(locale, 'deferredDaysShort', { n: plan.deferred_days });
    if (plan.deferred_months > 0) return t(locale, 'deferredMonthsShort', { n: plan.deferred_months });
    return t(locale, 'countShort', { n: plan.installments_count });
  }

  function longLabel(plan, locale) {
    if (plan.installments_count > 1) return t(locale, 'planCount', { n: plan.installments_count });
    if (plan.deferred_days > 0) return t(locale, 'planDays', { n: plan.deferred_days });
    if (plan.deferred_months > 0) return t(locale, 'planMonths', { n: plan.deferred_months });
    return t(locale, 'planInOne');
  }

  // "3 × 150,00 €", "151,35 € puis 2 × 150,00 €", "450,00 € le 5 novembre 2026".
  function planSummary(result, locale) {
    var instalments = result.payment_plan;
    var text;
    if (instalments.length === 1) {
      var only = instalments[0];
      var amount = formatMoney(only.total_amount, locale);
      text = isDeferred(result) && only.localized_due_date
        ? t(locale, 'summaryDeferred', { amount: amount, date: only.localized_due_date })
        : t(locale, 'summaryOnce', { amount: amount });
    } else {
      var runs = [];
      instalments.forEach(function (instalment) {
        var last = runs[runs.length - 1];
        if (last && last.amount === instalment.total_amount) last.count += 1;
        else runs.push({ amount: instalment.total_amount, count: 1 });
      });
      text = runs
        .map(function (run) {
          var money = formatMoney(run.amount, locale);
          return run.count > 1 ? t(locale, 'summaryTimes', { n: run.count, amount: money }) : money;
        })
        .join(' ' + t(locale, 'then') + ' ');
    }
    return result.customer_total_cost_amount === 0 ? t(locale, 'noFeesSuffix', { summary: text }) : text;
  }

  function purchaseLimit(result) {
    var constraints = result.constraints && result.constraints.purchase_amount;
    if (!constraints) return null;
    if (isCents(constraints.minimum) && result.purchase_amount < constraints.minimum) {
      return { kind: 'from', cents: constraints.minimum };
    }
    if (isCents(constraints.maximum) && result.purchase_amount > constraints.maximum) {
      return { kind: 'upTo', cents: constraints.maximum };
    }
    return null;
  }

  function reasonText(result, locale) {
    var limit = purchaseLimit(result);
    if (!limit) return t(locale, 'unavailable');
    return t(locale, limit.kind, { amount: formatMoney(limit.cents, locale, { wholeWhenRound: true }) });
  }

  function noneText(results, locale) {
    var limits = results.map(purchaseLimit);
    var first = limits[0];
    var same = first && limits.every(function (limit) {
      return limit && limit.kind === first.kind && limit.cents === first.cents;
    });
    if (!same) return t(locale, 'noneAvailable');
    var amount = formatMoney(first.cents, locale, { wholeWhenRound: true });
    return t(locale, first.kind === 'from' ? 'noneFrom' : 'noneUpTo', { amount: amount });
  }

  function headline(eligible, locale) {
    var counts = eligible.filter(function (result) {
      return result.installments_count > 1 && !isDeferred(result);
    });
    if (counts.length) {
      var labels = counts.map(function (result) {
        return locale === 'fr' ? shortLabel(result, locale) : String(result.installments_count);
      });
      return t(locale, 'headlineCounts', { plans: joinAlternatives(labels, locale) });
    }
    var other = eligible.filter(isDeferred)[0];
    return other ? t(locale, 'headlineOther', { plan: longLabel(other, locale) }) : t(locale, 'headlineGeneric');
  }

  function validResult(result) {
    if (!result || typeof result.eligible !== 'boolean') return false;
    if (!result.eligible) return true;
    return (
      isCents(result.customer_total_cost_amount) &&
      Array.isArray(result.payment_plan) &&
      result.payment_plan.length > 0 &&
      result.payment_plan.every(function (instalment) {
        return instalment && isCents(instalment.total_amount);
      })
    );
  }

  // ---------------------------------------------------------------- body scroll lock

  var scrollLock = { count: 0, overflow: '', paddingRight: '' };

  function lockScroll() {
    if (scrollLock.count++ > 0) return;
    var root = document.documentElement;
    var scrollbar = window.innerWidth - root.clientWidth;
    scrollLock.overflow = root.style.overflow;
    scrollLock.paddingRight = document.body.style.paddingRight;
    root.style.overflow = 'hidden';
    if (scrollbar > 0) {
      var current = parseFloat(window.getComputedStyle(document.body).paddingRight) || 0;
      document.body.style.paddingRight = current + scrollbar + 'px';
    }
  }

  function unlockScroll() {
    if (scrollLock.count === 0 || --scrollLock.count > 0) return;
    document.documentElement.style.overflow = scrollLock.overflow;
    document.body.style.paddingRight = scrollLock.paddingRight;
  }

  var FOCUSABLE =
    'button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), ' +
    'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

  // ---------------------------------------------------------------- the widget

  function Widget(element, options) {
    this.element = element;
    this.id = 'tranche-' + ++nextId;
    this.options = {};
    this.results = null;
    this.selectedKey = null;
    this.sequence = 0;
    this.controller = null;
    this.timer = null;
    this.cache = [];
    this.dialog = null;
    this.opener = null;
    this.destroyed = false;
    this.build();
    this.writeOptions(options || {});
    this.readOptions();
    this.observe();
    this.request(true);
  }

  Widget.prototype.build = function () {
    var element = this.element;
    element.classList.add('tranche-widget');
    if (!element.hasAttribute('data-tranche-widget')) element.setAttribute('data-tranche-widget', '');
    element.setAttribute('data-tranche-state', 'loading');
    element.textContent = '';
    this.box = el('div', 'tranche-box');
    this.live = el('div', 'tranche-sr-only');
    this.live.setAttribute('aria-live', 'polite');
    this.live.setAttribute('aria-atomic', 'true');
    element.appendChild(this.box);
    element.appendChild(this.live);
    this.renderSkeleton();
  };

  // The element's data attributes are the one source of truth: options given in JavaScript are
  // written onto them, so a variant picker setting data-amount and a call to update() agree.
  Widget.prototype.writeOptions = function (options) {
    var data = this.element.dataset;
    ['merchantId', 'amount', 'plans', 'locale', 'apiRoot'].forEach(function (name) {
      var value = options[name];
      if (value === undefined || value === null) return;
      data[name] = Array.isArray(value) ? value.join(',') : String(value);
    });
  };

  Widget.prototype.readOptions = function () {
    var data = this.element.dataset;
    this.options = {
      merchantId: String(data.merchantId || '').trim(),
      amount: parseAmount(data.amount),
      plans: parsePlans(data.plans),
      locale: normaliseLocale(data.locale || document.documentElement.lang),
      apiRoot: String(data.apiRoot || SCRIPT_ORIGIN).trim().replace(/\/+$/, '')
    };
  };

  Widget.prototype.observe = function () {
    var widget = this;
    if (!window.MutationObserver) return;
    this.observer = new MutationObserver(function () {
      widget.readOptions();
      widget.request(false);
    });
    this.observer.observe(this.element, { attributes: true, attributeFilter: OBSERVED_ATTRIBUTES });
  };

  /** New options (amount, plans, locale, merchantId, apiRoot); re-renders after a short pause. */
  Widget.prototype.update = function (options) {
    this.writeOptions(options || {});
    this.readOptions();
    this.request(false);
    return this;
  };

  Widget.prototype.destroy = function () {
    this.destroyed = true;
    if (this.observer) this.observer.disconnect();
    if (this.controller) this.controller.abort();
    clearTimeout(this.timer);
    this.closeDialog(false);
    if (this.dialog && this.dialog.parentNode) this.dialog.parentNode.removeChild(this.dialog);
    instances.delete(this.element);
  };

  Widget.prototype.request = function (immediately) {
    var widget = this;
    clearTimeout(this.timer);
    if (immediately) this.fetch();
    else this.timer = setTimeout(function () { widget.fetch(); }, DEBOUNCE_MS);
  };

  Widget.prototype.query = function () {
    var options = this.options;
    return {
      purchase_amount: options.amount,
      queries: options.plans,
      locale: options.locale
    };
  };

  Widget.prototype.cached = function (key) {
    var now = Date.now();
    this.cache = this.cache.filter(function (entry) { return now - entry.at < CACHE_MS; });
    for (var i = 0; i < this.cache.length; i++) {
      if (this.cache[i].key === key) return this.cache[i].results;
    }
    return null;
  };

  Widget.prototype.remember = function (key, results) {
    this.cache.push({ key: key, results: results, at: Date.now() });
    if (this.cache.length > CACHE_SIZE) this.cache.shift();
  };

  Widget.prototype.fetch = function () {
    var widget = this;
    var options = this.options;
    var sequence = ++this.sequence;
    if (this.controller) {
      this.controller.abort();
      this.controller = null;
    }
    if (!options.merchantId) return this.fail('data-merchant-id is missing');
    if (!(options.amount > 0)) return this.fail('data-amount must be a positive number of cents');
    if (!options.plans.length) return this.fail('data-plans lists no valid plan');

    var body = JSON.stringify(this.query());
    var key = options.apiRoot + ' ' + options.merchantId + ' ' + body;
    var hit = this.cached(key);
    if (hit) return this.show(hit);

    var controller = window.AbortController ? new AbortController() : null;
    this.controller = controller;
    this.element.setAttribute('aria-busy', 'true');
    window
      .fetch(options.apiRoot + ENDPOINT, {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        headers: {
          Authorization: 'Alma-Merchant-Auth ' + options.merchantId,
          'Content-Type': 'application/json',
          'X-Alma-Agent': 'Tranche Widget/' + VERSION
        },
        body: body,
        signal: controller ? controller.signal : undefined
      })
      .then(function (response) {
        return response.json().then(
          function (payload) { return { response: response, payload: payload }; },
          function () { return { response: response, payload: null }; }
        );
      })
      .then(function (answer) {
        if (sequence !== widget.sequence || widget.destroyed) return; // a newer request owns the widget
        widget.controller = null;
        var payload = answer.payload;
        if (!answer.response.ok) {
          var detail = payload && payload.error_code ? payload.error_code + ': ' + payload.message : '';
          return widget.fail('eligibility request failed with HTTP ' + answer.response.status + ' ' + detail);
        }
        if (!Array.isArray(payload) || payload.length !== options.plans.length || !payload.every(validResult)) {
          return widget.fail('unexpected eligibility response');
        }
        widget.remember(key, payload);
        widget.show(payload);
      })
      .catch(function (error) {
        if (sequence !== widget.sequence || widget.destroyed) return;
        if (error && error.name === 'AbortError') return;
        widget.controller = null;
        widget.fail('eligibility request failed: ' + (error && error.message ? error.message : error));
      });
  };

  Widget.prototype.fail = function (message) {
    console.warn('[Tranche] ' + message);
    this.results = null;
    this.element.removeAttribute('aria-busy');
    this.element.setAttribute('data-tranche-state', 'error');
    this.box.textContent = '';
    this.live.textContent = '';
    this.closeDialog(true);
  };

  // Answers come in query order; match on the plan itself in case a server reorders them.
  Widget.prototype.show = function (payload) {
    var byKey = {};
    payload.forEach(function (result) { byKey[planKey(result)] = result; });
    this.results = this.options.plans.map(function (plan, index) {
      return byKey[planKey(plan)] || payload[index];
    });
    var eligible = this.eligible();
    var keys = eligible.map(planKey);
    if (keys.indexOf(this.selectedKey) < 0) {
      var preferred = eligible.filter(function (result) { return result.installments_count > 1; })[0];
      this.selectedKey = preferred ? planKey(preferred) : keys[0] || null;
    }
    this.element.removeAttribute('aria-busy');
    this.render();
    if (this.dialog && this.dialog.hasAttribute('open')) {
      if (eligible.length) this.renderDialog();
      else this.closeDialog(true);
    }
  };

  Widget.prototype.eligible = function () {
    return (this.results || []).filter(function (result) { return result.eligible; });
  };

  Widget.prototype.selected = function () {
    var key = this.selectedKey;
    return this.eligible().filter(function (result) { return planKey(result) === key; })[0] || null;
  };

  Widget.prototype.renderSkeleton = function () {
    var box = this.box;
    box.textContent = '';
    box.setAttribute('aria-hidden', 'true');
    var skeleton = el('div', 'tranche-skeleton');
    skeleton.appendChild(el('span', 'tranche-skeleton-line tranche-skeleton-headline'));
    var pills = el('span', 'tranche-skeleton-pills');
    for (var i = 0; i < 4; i++) pills.appendChild(el('span', 'tranche-skeleton-pill'));
    skeleton.appendChild(pills);
    skeleton.appendChild(el('span', 'tranche-skeleton-line tranche-skeleton-summary'));
    box.appendChild(skeleton);
  };

  Widget.prototype.render = function () {
    var widget = this;
    var locale = this.options.locale;
    var eligible = this.eligible();
    var box = this.box;
    var hadFocus = box.contains(document.activeElement) ? document.activeElement.getAttribute('data-plan') : null;
    box.textContent = '';
    box.removeAttribute('aria-hidden');
    this.element.setAttribute('lang', locale);

    if (!eligible.length) {
      this.element.setAttribute('data-tranche-state', 'none');
      var text = noneText(this.results, locale);
      box.appendChild(withLogo(el('p', 'tranche-none'), text));
      this.announce(text);
      return;
    }

    this.element.setAttribute('data-tranche-state', 'ready');
    var title = headline(eligible, locale);
    box.appendChild(withLogo(el('p', 'tranche-headline'), title));

    var pills = el('div', 'tranche-plans');
    pills.setAttribute('role', 'group');
    pills.setAttribute('aria-label', t(locale, 'plansLabel'));
    this.results.forEach(function (result) {
      var key = planKey(result);
      var label = shortLabel(result, locale);
      var pill;
      if (result.eligible) {
        pill = el('button', 'tranche-plan');
        pill.type = 'button';
        pill.setAttribute('data-plan', key);
        pill.setAttribute('aria-haspopup', 'dialog');
        pill.appendChild(el('span', null, label));
        pill.appendChild(
          el('span', 'tranche-sr-only', ' ' + t(locale, 'pillHint', { plan: longLabel(result, locale) }))
        );
        if (key === widget.selectedKey) {
          pill.classList.add('is-selected');
          pill.setAttribute('aria-current', 'true');
        }
        pill.addEventListener('click', function () {
          widget.selectedKey = key;
          widget.render();
          widget.openDialog(box.querySelector('[data-plan="' + key + '"]'));
        });
      } else {
        pill = el('span', 'tranche-plan is-disabled');
        pill.appendChild(el('span', null, label));
        pill.appendChild(el('span', 'tranche-plan-reason', reasonText(result, locale)));
      }
      pills.appendChild(pill);
    });
    box.appendChild(pills);

    var summary = planSummary(this.selected(), locale);
    box.appendChild(el('p', 'tranche-summary', summary));
    this.announce(title + '. ' + summary);

    if (hadFocus) {
      var again = box.querySelector('[data-plan="' + hadFocus + '"]');
      if (again) again.focus();
    }
  };

  Widget.prototype.announce = function (text) {
    if (this.live.textContent !== text) this.live.textContent = text;
  };

  // ---------------------------------------------------------------- the dialog

  Widget.prototype.buildDialog = function () {
    var widget = this;
    var dialog = document.createElement('dialog');
    var native = typeof dialog.showModal === 'function';
    if (!native) dialog = document.createElement('div');
    dialog.className = 'tranche-dialog' + (native ? '' : ' tranche-dialog--fallback');
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-labelledby', this.id + '-title');
    dialog.addEventListener('cancel', function (event) {
      event.preventDefault();
      widget.closeDialog(true);
    });
    dialog.addEventListener('close', function () {
      if (widget.isOpen) widget.closeDialog(true); // closed by the browser itself
    });
    dialog.addEventListener('keydown', function (event) { widget.onDialogKey(event); });
    dialog.addEventListener('click', function (event) {
      if (event.target === dialog) widget.closeDialog(true); // the backdrop
    });
    document.body.appendChild(dialog);
    this.dialog = dialog;
    this.nativeDialog = native;
  };

  Widget.prototype.openDialog = function (opener) {
    if (!this.selected()) return;
    if (!this.dialog) this.buildDialog();
    this.opener = opener || document.activeElement;
    this.renderDialog();
    if (!this.isOpen) {
      this.isOpen = true;
      lockScroll();
      if (this.nativeDialog) this.dialog.showModal();
      else this.dialog.setAttribute('open', '');
    }
    var start = this.dialog.querySelector('[role="tab"][aria-selected="true"]') ||
      this.dialog.querySelector('.tranche-close');
    start.focus();
  };

  Widget.prototype.closeDialog = function (restoreFocus) {
    if (!this.dialog || !this.isOpen) return;
    this.isOpen = false;
    if (this.nativeDialog) {
      if (this.dialog.open) this.dialog.close();
    } else {
      this.dialog.removeAttribute('open');
    }
    unlockScroll();
    if (restoreFocus) {
      var key = this.opener && this.opener.getAttribute && this.opener.getAttribute('data-plan');
      // The badge may have been re-rendered meanwhile: fall back to the same plan's new button.
      var target = this.opener && this.opener.isConnected ? this.opener
        : key && this.box.querySelector('[data-plan="' + key + '"]');
      target = target || this.box.querySelector('.tranche-plan.is-selected') || this.box.querySelector('button');
      if (target && target.focus) target.focus();
    }
    this.opener = null;
  };

  Widget.prototype.onDialogKey = function (event) {
    if (event.key === 'Escape' || event.key === 'Esc') {
      event.preventDefault();
      this.closeDialog(true);
      return;
    }
    if (event.key === 'Tab') {
      var focusable = Array.prototype.filter.call(this.dialog.querySelectorAll(FOCUSABLE), function (node) {
        return node.tabIndex >= 0 && node.getClientRects().length > 0;
      });
      if (!focusable.length) return;
      var first = focusable[0];
      var last = focusable[focusable.length - 1];
      var inside = this.dialog.contains(document.activeElement);
      if (event.shiftKey && (document.activeElement === first || !inside)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
        event.preventDefault();
        first.focus();
      }
      return;
    }
    var tab = event.target.closest ? event.target.closest('[role="tab"]') : null;
    if (tab && ['ArrowLeft', 'ArrowRight', 'Home', 'End'].indexOf(event.key) >= 0) {
      var tabs = Array.prototype.slice.call(this.dialog.querySelectorAll('[role="tab"]'));
      var index = tabs.indexOf(tab);
      var next = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: tabs.length - 1 }[event.key];
      next = (next + tabs.length) % tabs.length;
      event.preventDefault();
      this.selectTab(tabs[next].getAttribute('data-plan'));
    }
  };

  Widget.prototype.selectTab = function (key) {
    this.selectedKey = key;
    this.renderDialog();
    this.render();
    var tab = this.dialog.querySelector('[role="tab"][data-plan="' + key + '"]');
    if (tab) tab.focus();
  };

  Widget.prototype.renderDialog = function () {
    var widget = this;
    var locale = this.options.locale;
    var result = this.selected();
    var dialog = this.dialog;
    if (!result) return;
    dialog.textContent = '';
    dialog.setAttribute('lang', locale);

    var inner = el('div', 'tranche-dialog-inner');
    var header = el('div', 'tranche-dialog-header');
    var title = el('h2', 'tranche-dialog-title');
    title.id = this.id + '-title';
    withLogo(title, t(locale, 'dialogTitle'));
    header.appendChild(title);
    var close = el('button', 'tranche-close');
    close.type = 'button';
    close.setAttribute('aria-label', t(locale, 'close'));
    close.appendChild(el('span', null, '×')).setAttribute('aria-hidden', 'true');
    close.addEventListener('click', function () { widget.closeDialog(true); });
    header.appendChild(close);
    inner.appendChild(header);

    var eligible = this.eligible();
    var panelId = this.id + '-panel';
    var tabs = el('div', 'tranche-tabs');
    tabs.setAttribute('role', 'tablist');
    tabs.setAttribute('aria-label', t(locale, 'plansLabel'));
    eligible.forEach(function (plan) {
      var key = planKey(plan);
      var selected = key === widget.selectedKey;
      var tab = el('button', 'tranche-tab', shortLabel(plan, locale));
      tab.type = 'button';
      tab.id = widget.id + '-tab-' + key.replace(/:/g, '-');
      tab.setAttribute('role', 'tab');
      tab.setAttribute('data-plan', key);
      tab.setAttribute('aria-selected', selected ? 'true' : 'false');
      tab.setAttribute('aria-controls', panelId);
      tab.setAttribute('title', capitalise(longLabel(plan, locale), locale));
      tab.tabIndex = selected ? 0 : -1;
      tab.addEventListener('click', function () { widget.selectTab(key); });
      tabs.appendChild(tab);
    });
    inner.appendChild(tabs);

    var panel = el('div', 'tranche-panel');
    panel.id = panelId;
    panel.setAttribute('role', 'tabpanel');
    panel.tabIndex = 0; // nothing inside it takes focus: let keyboard users reach it (APG tabs)
    panel.setAttribute('aria-labelledby', this.id + '-tab-' + planKey(result).replace(/:/g, '-'));
    panel.appendChild(el('p', 'tranche-panel-summary', planSummary(result, locale)));

    var scheduleTitle = el('h3', 'tranche-section-title', t(locale, 'schedule'));
    scheduleTitle.id = this.id + '-schedule';
    panel.appendChild(scheduleTitle);
    var list = el('ol', 'tranche-schedule');
    list.setAttribute('aria-labelledby', scheduleTitle.id);
    result.payment_plan.forEach(function (instalment) {
      var item = el('li', 'tranche-instalment');
      item.appendChild(el('span', 'tranche-instalment-date', capitalise(instalment.localized_due_date || '', locale)));
      var amount = el('span', 'tranche-instalment-amount');
      amount.appendChild(el('span', 'tranche-money', formatMoney(instalment.total_amount, locale)));
      if (instalment.customer_fee > 0) {
        amount.appendChild(el('span', 'tranche-instalment-fee',
          t(locale, 'includingFees', { amount: formatMoney(instalment.customer_fee, locale) })));
      }
      item.appendChild(amount);
      list.appendChild(item);
    });
    panel.appendChild(list);

    var cost = result.customer_total_cost_amount;
    var total = result.payment_plan.reduce(function (sum, instalment) { return sum + instalment.total_amount; }, 0);
    var facts = el('dl', 'tranche-totals');
    var fact = function (label, value, className) {
      var row = el('div', 'tranche-total' + (className ? ' ' + className : ''));
      row.appendChild(el('dt', null, label));
      row.appendChild(el('dd', null, value));
      facts.appendChild(row);
    };
    fact(t(locale, 'creditCost'), cost > 0 ? formatMoney(cost, locale) : t(locale, 'noFees'), 'tranche-total-cost');
    fact(t(locale, 'totalPaid'), formatMoney(total, locale), 'tranche-total-paid');
    panel.appendChild(facts);
    if (isCents(result.annual_interest_rate)) {
      panel.appendChild(el('p', 'tranche-apr', t(locale, 'apr', { rate: formatRate(result.annual_interest_rate, locale) })));
    }
    var notes = el('p', 'tranche-legal');
    notes.textContent = (cost > 0 ? t(locale, 'legal') + ' ' : '') + t(locale, 'approval');
    panel.appendChild(notes);
    inner.appendChild(panel);
    dialog.appendChild(inner);
  };

  // ---------------------------------------------------------------- public API

  function widget(element, options) {
    if (!element || element.nodeType !== 1) throw new TypeError('Tranche.widget needs an element');
    var existing = instances.get(element);
    if (existing) return options ? existing.update(options) : existing;
    var instance = new Widget(element, options);
    instances.set(element, instance);
    return instance;
  }

  function scan(root) {
    var nodes = (root || document).querySelectorAll('[data-tranche-widget]');
    return Array.prototype.map.call(nodes, function (node) {
      return instances.get(node) || widget(node);
    });
  }

  window.Tranche = {
    version: VERSION,
    widget: widget,
    scan: scan,
    // Exposed for merchants who format amounts next to the widget the same way.
    formatMoney: function (cents, locale) {
      return formatMoney(cents, normaliseLocale(locale));
    }
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { scan(); });
  } else {
    scan();
  }
})(window, document);
