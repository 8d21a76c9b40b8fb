"""Operators' pages for credit decisions: the review queue (approve or refuse, behind a
confirmation with a note), the versions of the decision's rules, the deny list and the
decisions themselves (read-only, reasons and features shown as tables).

Decisions and reviews change through their services only; rule sets are never edited once
saved (past decisions are explained by the version that made them): a change is a new
version, made active by an action."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin
from apps.common.errors import DomainError
from apps.common.money import display_eur
from apps.payments.decision import (
    DEFAULT_RULES,
    InvalidRules,
    main_reasons,
    reason_text,
    rules_validate,
)
from apps.payments.models import (
    Checkout,
    CreditDecision,
    DecisionReview,
    DecisionRuleSet,
    DenyListEntry,
)
from apps.payments.services.deny_list import deny_list_remove
from apps.payments.services.reviews import OPERATOR_RULES_VERSION, review_decide
from apps.payments.services.scoring import rules_active
from apps.verification.bank import bank_check_get
from apps.verification.bank_errors import BankCheckNotFound
from apps.verification.errors import IdentityCheckNotFound, InvalidPhone
from apps.verification.identity import identity_check_get
from apps.verification.phones import phone_normalise

EMPTY = "—"
VERDICTS = {"approve": True, "refuse": False}


# --- small HTML renders shared by the pages -------------------------------------------------


def _yes_no(value: bool | None) -> str:
    if value is None:
        return EMPTY
    return str(_("yes")) if value else str(_("no"))


def _when(moment) -> str:
    if moment is None:
        return EMPTY
    return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _plain(key: str, value: Any) -> str:
    """One feature's value as people read it: amounts in euros, yes/no, lists joined."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, int) and key.endswith("_cents"):
        return display_eur(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(key, item) for item in value) or EMPTY
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_plain(k, v)}" for k, v in value.items())
    return str(value)


def _table(headers: list[str], rows: list[tuple]) -> str:
    if not rows:
        return EMPTY
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    cells = "<td>{}</td>" * len(headers)
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
        head,
        format_html_join("", "<tr>" + cells + "</tr>", rows),
    )


def _pairs(rows: list[tuple[str, Any]]) -> str:
    if not rows:
        return EMPTY
    return format_html(
        "<table><tbody>{}</tbody></table>",
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )


def reasons_table(reasons: list[dict]) -> str:
    """A decision's reasons in plain words, with their points and category."""
    rows = [
        (
            reason_text(r.get("code", ""), r.get("message", "")),
            r.get("code", ""),
            r.get("points", 0),
            r.get("category", ""),
        )
        for r in reasons or []
    ]
    return _table([_("Reason"), _("Code"), _("Points"), _("Category")], rows)


def features_table(features: dict) -> str:
    """What a decision saw, one feature a line."""
    rows = [
        (key.removesuffix("_cents").replace("_", " "), _plain(key, value))
        for key, value in (features or {}).items()
    ]
    return _pairs(rows)


def decision_summary(decision: CreditDecision) -> str:
    return _pairs(
        [
            (_("Outcome"), decision.get_outcome_display()),
            (_("Score"), decision.score),
            (_("Asks for"), _plain("asks", decision.asks)),
            (_("Made by"), decision.made_by),
            (_("Rules version"), decision.rules_version),
            (_("Made at"), _when(decision.created_at)),
        ]
    )


# --- the review queue -----------------------------------------------------------------------


class ReviewStatusFilter(admin.SimpleListFilter):
    """The queue shows the open reviews unless another status (or all) is chosen."""

    title = _("status")
    parameter_name = "status"
    default = DecisionReview.Status.OPEN
    every = "all"

    def lookups(self, request, model_admin):
        return [*DecisionReview.Status.choices, (self.every, _("All"))]

    def value(self):
        return super().value() or self.default

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == self.every:
            return queryset
        return queryset.filter(status=self.value())


class DecideForm(forms.Form):
    note = forms.CharField(
        label=_("Note"),
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        max_length=5_000,
        help_text=_("Why you decide so. Kept with the review and the decision."),
    )


@admin.register(DecisionReview)
class DecisionReviewAdmin(admin.ModelAdmin):
    """The operators' queue of decisions to look at again. Read-only: deciding goes through
    the confirmation page (``review_decide``), open to those who may change reviews."""

    list_display = (
        "payment_link",
        "merchant",
        "amount",
        "kind",
        "status",
        "age",
        "decision_outcome",
        "decision_score",
    )
    # The payment column links to the payment itself: the review opens from its kind.
    list_display_links = ("kind",)
    list_filter = (ReviewStatusFilter, "kind")
    search_fields = ("=payment__public_id",)
    list_select_related = ("payment__merchant", "decision")
    show_full_result_count = False
    # Open first, then the oldest first: the queue is worked from the top.
    ordering = (
        Case(
            When(status=DecisionReview.Status.OPEN, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ).asc(),
        "created_at",
        "pk",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "payment_link",
                    "merchant",
                    "amount",
                    "payment_state",
                    "kind",
                    "status",
                    "created_at",
                    "customer_message",
                )
            },
        ),
        (
            _("The decision reviewed"),
            {"fields": ("decision_details", "decision_reasons", "decision_features")},
        ),
        (_("Verification evidence"), {"fields": ("identity_evidence", "bank_evidence")}),
        (_("The payment's decisions"), {"fields": ("decisions_history",)}),
        (_("Outcome"), {"fields": ("operator_note", "decided_by", "decided_at")}),
    )
    readonly_fields = (
        "payment_link",
        "merchant",
        "amount",
        "payment_state",
        "kind",
        "status",
        "created_at",
        "customer_message",
        "decision_details",
        "decision_reasons",
        "decision_features",
        "identity_evidence",
        "bank_evidence",
        "decisions_history",
        "operator_note",
        "decided_by",
        "decided_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The page stays read-only; deciding is checked by may_decide.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def may_decide(self, request) -> bool:
        return request.user.has_perm("payments.change_decisionreview")

    def get_urls(self):
        decide = path(
            "<int:review_id>/decide/<str:verdict>/",
            self.admin_site.admin_view(self.decide_view),
            name="payments_decisionreview_decide",
        )
        return [decide, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        review = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if (
            review is not None
            and review.status == DecisionReview.Status.OPEN
            and self.may_decide(request)
        ):
            extra["decide_urls"] = [
                (
                    reverse("admin:payments_decisionreview_decide", args=[review.pk, verdict]),
                    label,
                )
                for verdict, label in (("approve", _("Approve")), ("refuse", _("Refuse")))
            ]
        return super().change_view(request, object_id, form_url, extra)

    def decide_view(self, request, review_id: int, verdict: str):
        """The confirmation page of an approve or a refuse: a note is required."""
        if verdict not in VERDICTS:
            raise Http404
        if not self.may_decide(request):
            raise PermissionDenied
        review = get_object_or_404(
            DecisionReview.objects.select_related("payment__merchant", "decision"), pk=review_id
        )
        change_url = reverse("admin:payments_decisionreview_change", args=[review.pk])
        if review.status != DecisionReview.Status.OPEN:
            messages.error(
                request,
                _("This review was already decided (%(status)s): nothing was changed.")
                % {"status": review.get_status_display()},
            )
            return redirect(change_url)
        approve = VERDICTS[verdict]
        form = DecideForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                review = review_decide(
                    review_id=review.pk,
                    approve=approve,
                    note=form.cleaned_data["note"],
                    operator=request.user,
                    now=timezone.now(),
                )
            except DomainError as error:
                messages.error(request, error.message)
                return redirect(change_url)
            review.payment.refresh_from_db(fields=["state"])
            messages.success(
                request,
                (
                    _("Approved: payment %(payment)s is now %(state)s.")
                    if approve
                    else _("Refused: payment %(payment)s is now %(state)s.")
                )
                % {
                    "payment": review.payment.public_id,
                    "state": review.payment.get_state_display(),
                },
            )
            return redirect(change_url)
        title = _("Approve this payment") if approve else _("Refuse this payment")
        question = (
            _(
                "The payment is accepted: the customer is told by email and may come back "
                "to pay. This cannot be undone."
            )
            if approve
            else _(
                "The payment is refused: the customer is told by email and may still pay "
                "the whole amount at once. This cannot be undone."
            )
        )
        return TemplateResponse(
            request,
            "admin/payments/decisionreview/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "question": question,
                "review": review,
                "approve": approve,
                "reasons": reasons_table(review.decision.reasons),
                "form": form,
                "opts": self.model._meta,
                "change_url": change_url,
            },
        )

    @admin.display(description=_("payment"), ordering="payment__public_id")
    def payment_link(self, review: DecisionReview):
        url = reverse("admin:payments_payment_change", args=[review.payment_id])
        return format_html('<a href="{}">{}</a>', url, review.payment.public_id)

    @admin.display(description=_("merchant"))
    def merchant(self, review: DecisionReview):
        return review.payment.merchant

    @admin.display(description=_("amount"))
    def amount(self, review: DecisionReview):
        return review.payment.purchase_amount

    @admin.display(description=_("payment's state"))
    def payment_state(self, review: DecisionReview):
        return review.payment.get_state_display()

    @admin.display(description=_("age"), ordering="created_at")
    def age(self, review: DecisionReview) -> str:
        return timesince(review.created_at, review.decided_at or timezone.now())

    @admin.display(description=_("outcome"), ordering="decision__outcome")
    def decision_outcome(self, review: DecisionReview):
        return review.decision.get_outcome_display()

    @admin.display(description=_("score"), ordering="decision__score")
    def decision_score(self, review: DecisionReview) -> int:
        return review.decision.score

    @admin.display(description=_("decision"))
    def decision_details(self, review: DecisionReview) -> str:
        return decision_summary(review.decision)

    @admin.display(description=_("reasons"))
    def decision_reasons(self, review: DecisionReview) -> str:
        return reasons_table(review.decision.reasons)

    @admin.display(description=_("what it saw"))
    def decision_features(self, review: DecisionReview) -> str:
        return features_table(review.decision.features)

    def _checkout(self, review: DecisionReview) -> Checkout | None:
        if not hasattr(review, "_checkout_cache"):
            review._checkout_cache = Checkout.objects.filter(payment_id=review.payment_id).first()
        return review._checkout_cache

    @admin.display(description=_("identity document"))
    def identity_evidence(self, review: DecisionReview) -> str:
        checkout = self._checkout(review)
        if checkout is None or not checkout.identity_check_id:
            return _("No identity check on this payment.")
        try:
            check = identity_check_get(check_id=checkout.identity_check_id)
        except IdentityCheckNotFound:
            return _("Identity check %(id)s not found.") % {"id": checkout.identity_check_id}
        url = reverse("admin:verification_identitycheck_change", args=[check.pk])
        provider = (
            format_html("<pre>{}</pre>", json.dumps(check.provider_result, indent=2))
            if check.provider_result
            else EMPTY
        )
        return _pairs(
            [
                (_("Check"), format_html('<a href="{}">{}</a>', url, check.public_id)),
                (_("Status"), check.get_status_display()),
                (_("Result code"), check.result_code or EMPTY),
                (_("Names match"), _yes_no(check.names_match)),
                (_("Birth date matches"), _yes_no(check.birth_date_match)),
                (_("Decided at"), _when(check.decided_at)),
                (_("Provider's result"), provider),
            ]
        )

    @admin.display(description=_("bank data"))
    def bank_evidence(self, review: DecisionReview) -> str:
        checkout = self._checkout(review)
        if checkout is None or not checkout.bank_check_id:
            return _("No bank-data check on this payment.")
        try:
            check = bank_check_get(check_id=checkout.bank_check_id)
        except BankCheckNotFound:
            return _("Bank-data check %(id)s not found.") % {"id": checkout.bank_check_id}
        url = reverse("admin:verification_bankcheck_change", args=[check.pk])
        analysis = check.analysis or {}

        def amount(key: str, fallback: int | None = None) -> str:
            value = analysis.get(key, fallback)
            return display_eur(int(value)) if isinstance(value, int) else EMPTY

        return _pairs(
            [
                (_("Check"), format_html('<a href="{}">{}</a>', url, check.public_id)),
                (_("Status"), check.get_status_display()),
                (_("Bank"), check.bank_name or EMPTY),
                (_("Monthly income"), amount("monthly_income_cents", check.monthly_income_cents)),
                (_("Fixed charges per month"), amount("fixed_charges_cents")),
                (_("Credit repayments per month"), amount("credit_repayments_cents")),
                (_("Overdraft days"), analysis.get("overdraft_days", EMPTY)),
                (_("Gambling per month"), amount("gambling_cents")),
                (
                    _("Repayment capacity per month"),
                    amount("repayment_capacity_cents", check.repayment_capacity_cents),
                ),
                (_("Flags"), ", ".join(analysis.get("flags") or []) or str(_("none"))),
            ]
        )

    @admin.display(description=_("history"))
    def decisions_history(self, review: DecisionReview) -> str:
        rows = []
        for decision in CreditDecision.objects.filter(payment_id=review.payment_id).order_by(
            "created_at", "pk"
        ):
            said = main_reasons(decision.reasons) or [
                reason_text(r.get("code", ""), r.get("message", "")) for r in decision.reasons[:1]
            ]
            rows.append(
                (
                    _when(decision.created_at),
                    decision.made_by,
                    decision.get_outcome_display(),
                    decision.score,
                    decision.rules_version,
                    " / ".join(said) or EMPTY,
                    str(_("reviewed here")) if decision.pk == review.decision_id else "",
                )
            )
        return _table(
            [
                _("Made at"),
                _("Made by"),
                _("Outcome"),
                _("Score"),
                _("Rules version"),
                _("Main reasons"),
                "",
            ],
            rows,
        )


# --- the decisions --------------------------------------------------------------------------


@admin.register(CreditDecision)
class CreditDecisionAdmin(ReadOnlyAdmin):
    list_display = ("payment", "outcome", "score", "made_by", "rules_version", "created_at")
    list_filter = ("outcome", "made_by")
    search_fields = ("=payment__public_id",)
    list_select_related = ("payment",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "payment",
        "outcome",
        "score",
        "asks",
        "made_by",
        "rules_version",
        "created_at",
        "reasons_table",
        "features_table",
    )

    @admin.display(description=_("reasons"))
    def reasons_table(self, decision: CreditDecision) -> str:
        return reasons_table(decision.reasons)

    @admin.display(description=_("what it saw"))
    def features_table(self, decision: CreditDecision) -> str:
        return features_table(decision.features)


# --- the rules' versions --------------------------------------------------------------------

# Version names that already mean something else: the shipped rules and the operators' own.
RESERVED_VERSIONS = frozenset({DEFAULT_RULES["version"], OPERATOR_RULES_VERSION})


class RuleSetForm(forms.ModelForm):
    rules = forms.CharField(
        label=_("rules"),
        widget=forms.Textarea(attrs={"rows": 40, "cols": 100, "spellcheck": "false"}),
        help_text=_(
            "JSON, copied from the active version. Settings and rules left out keep the "
            "shipped values; unknown ones are refused. The version is the field above."
        ),
    )

    class Meta:
        model = DecisionRuleSet
        fields = ["version", "rules", "note"]

    def clean_version(self) -> str:
        version = self.cleaned_data["version"].strip()
        if version in RESERVED_VERSIONS:
            raise ValidationError(_("This version name is reserved: choose another."))
        return version

    def clean_rules(self) -> dict[str, Any]:
        try:
            data = json.loads(self.cleaned_data["rules"])
        except json.JSONDecodeError as error:
            raise ValidationError(
                _("This is not valid JSON: %(error)s (line %(line)d, column %(column)d).")
                % {"error": error.msg, "line": error.lineno, "column": error.colno}
            ) from error
        version = self.cleaned_data.get("version")
        if isinstance(data, dict) and version:
            if data.get("version", version) != version:
                raise ValidationError(
                    _("The rules name version %(inner)s but the version field says %(outer)s.")
                    % {"inner": data["version"], "outer": version}
                )
            data = {**data, "version": version}
        try:
            return rules_validate(data)
        except InvalidRules as error:
            raise ValidationError(_("Invalid rules: %(error)s") % {"error": error}) from error


@admin.register(DecisionRuleSet)
class DecisionRuleSetAdmin(admin.ModelAdmin):
    """Versions of the decision's rules. A version is written once (a change is a new
    version) and made active by the action; never deleted."""

    form = RuleSetForm
    list_display = ("version", "is_active", "created_at", "created_by", "note")
    list_filter = ("is_active",)
    search_fields = ("version",)
    ordering = ("-created_at", "-pk")
    actions = ["make_active"]
    shown_fields = (
        "version",
        "is_active",
        "note",
        "created_at",
        "created_by",
        "rules_json",
    )

    def get_fields(self, request, obj=None):
        return ["version", "rules", "note"] if obj is None else list(self.shown_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.shown_fields

    def get_changeform_initial_data(self, request) -> dict[str, Any]:
        rules = dict(rules_active().data)
        rules.pop("version", None)  # the version is its own field
        return {"rules": json.dumps(rules, indent=2, ensure_ascii=False)}

    def has_change_permission(self, request, obj=None) -> bool:
        # For the list's action only: a saved version is never edited.
        return obj is None and request.user.has_perm("payments.change_decisionruleset")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change:
            raise PermissionDenied
        obj.created_by = request.user
        obj.created_at = timezone.now()
        obj.is_active = False
        super().save_model(request, obj, form, change)

    @admin.display(description=_("rules"))
    def rules_json(self, rule_set: DecisionRuleSet) -> str:
        return format_html("<pre>{}</pre>", json.dumps(rule_set.rules, indent=2))

    @admin.action(description=_("Make this version active"), permissions=["change"])
    def make_active(self, request, queryset):
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, _("Select exactly one version."), messages.ERROR)
            return
        rule_set = chosen[0]
        with transaction.atomic():
            # Locking every version (few rows) makes two activations run one after the other.
            list(DecisionRuleSet.objects.select_for_update().order_by("pk").values_list("pk"))
            previous = list(
                DecisionRuleSet.objects.filter(is_active=True)
                .exclude(pk=rule_set.pk)
                .values_list("version", flat=True)
            )
            DecisionRuleSet.objects.filter(is_active=True).exclude(pk=rule_set.pk).update(
                is_active=False
            )
            DecisionRuleSet.objects.filter(pk=rule_set.pk).update(is_active=True)
            self.log_change(
                request,
                rule_set,
                f"Made active (before: {', '.join(previous) or DEFAULT_RULES['version']}).",
            )
        self.message_user(
            request, _("Version %(version)s is now active.") % {"version": rule_set.version}
        )


# --- the deny list --------------------------------------------------------------------------


class ListedFilter(admin.SimpleListFilter):
    title = _("on the list")
    parameter_name = "listed"

    def lookups(self, request, model_admin):
        return [("yes", _("Listed")), ("no", _("Removed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(removed_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(removed_at__isnull=False)
        return queryset


class DenyListEntryForm(forms.ModelForm):
    class Meta:
        model = DenyListEntry
        fields = ["kind", "value", "livemode", "note"]
        help_texts = {
            "value": _(
                "An email, a mobile number (any usual form), the card's fingerprint or the "
                "device id."
            )
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if not kind or value is None:
            return data
        value = self._normalised(kind, value)
        data["value"] = value
        if DenyListEntry.objects.filter(
            kind=kind, value=value, livemode=data.get("livemode", False), removed_at__isnull=True
        ).exists():
            self.add_error("value", _("This value is already on the deny list."))
        return data

    def _normalised(self, kind: str, value: str) -> str:
        value = value.strip()
        if kind == DenyListEntry.Kind.EMAIL:
            value = value.lower()
            try:
                validate_email(value)
            except ValidationError as error:
                raise ValidationError({"value": error.messages}) from error
            return value
        if kind == DenyListEntry.Kind.PHONE:
            try:
                return phone_normalise(value)
            except InvalidPhone as error:
                raise ValidationError({"value": error.message}) from error
        return value


@admin.register(DenyListEntry)
class DenyListEntryAdmin(admin.ModelAdmin):
    """The deny list: operators add entries and take them off (the row stays)."""

    form = DenyListEntryForm
    list_display = ("kind", "value", "source", "livemode", "created_at", "removed_at", "payment")
    list_filter = (ListedFilter, "kind", "source", "livemode")
    search_fields = ("value",)
    list_select_related = ("payment",)
    ordering = ("-created_at", "-pk")
    show_full_result_count = False
    actions = ["remove"]
    shown_fields = (
        "kind",
        "value",
        "livemode",
        "source",
        "payment",
        "note",
        "created_at",
        "removed_at",
    )

    def get_fields(self, request, obj=None):
        return ["kind", "value", "livemode", "note"] if obj is None else list(self.shown_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.shown_fields

    def has_change_permission(self, request, obj=None) -> bool:
        # For the list's action only: an entry is never edited.
        return obj is None and request.user.has_perm("payments.change_denylistentry")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change:
            raise PermissionDenied
        obj.source = DenyListEntry.Source.OPERATOR
        obj.created_at = timezone.now()
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Remove from the deny list"), permissions=["change"])
    def remove(self, request, queryset):
        now = timezone.now()
        removed = 0
        for entry_id in queryset.filter(removed_at__isnull=True).values_list("pk", flat=True):
            entry = deny_list_remove(entry_id=entry_id, now=now)
            self.log_change(request, entry, "Removed from the deny list.")
            removed += 1
        self.message_user(
            request, _("%(count)d entry(ies) removed from the deny list.") % {"count": removed}
        )
