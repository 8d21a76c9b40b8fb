"""Operators' view of the ledger: read-only accounts and postings, payouts and their SEPA files,
reconciliation mismatches. Every change goes through a service, behind a confirmation."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from djmoney.money import Money

from apps.common.admin import ReadOnlyAdmin, ReadOnlyInline
from apps.common.errors import DomainError

from . import services
from .models import (
    Account,
    Leg,
    Mismatch,
    Payout,
    PayoutEvent,
    PayoutRun,
    Posting,
    ReconciliationRun,
)
from .selectors import account_statement

STATEMENT_LINES = 50


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["key", "kind", "livemode", "merchant", "natural_balance", "closed_at"]
    list_filter = ["kind", "livemode"]
    search_fields = ["key", "reference", "merchant__legal_name", "merchant__public_id"]
    list_select_related = ["merchant"]
    fields = [
        "key",
        "kind",
        "livemode",
        "merchant",
        "reference",
        "natural_balance",
        "balance",
        "created_at",
        "closed_at",
        "statement",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description=_("balance (normal side)"))
    def natural_balance(self, account: Account):
        return account.natural_balance

    @admin.display(description=_("latest legs"))
    def statement(self, account: Account):
        legs = account_statement(account=account)[:STATEMENT_LINES]
        if not legs:
            return _("No legs yet.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(leg.posted_at).strftime("%Y-%m-%d %H:%M:%S"),
                    reverse("admin:ledger_posting_change", args=[leg.posting_id]),
                    leg.posting.kind,
                    leg.amount,
                    Money(leg.balance_after, leg.amount.currency),
                )
                for leg in legs
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("posted at"),
            _("posting"),
            _("amount (debit +)"),
            _("balance after"),
            rows,
        )


class LegInline(ReadOnlyInline):
    model = Leg
    fields = ["account", "amount", "balance_after", "posted_at"]
    readonly_fields = fields


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "livemode",
        "merchant",
        "reference",
        "processor_reference",
        "effective_at",
        "created_at",
    ]
    list_filter = ["kind", "livemode"]
    search_fields = ["=reference", "=processor_reference", "=idempotency_key", "=memo"]
    list_select_related = ["merchant"]
    readonly_fields = [
        "kind",
        "livemode",
        "source",
        "idempotency_key",
        "merchant",
        "reference",
        "processor_reference",
        "memo",
        "effective_at",
        "created_at",
        "reverses",
    ]
    fields = readonly_fields
    inlines = [LegInline]
    show_full_result_count = False


class PayoutInline(ReadOnlyInline):
    model = Payout
    fields = ["public_id", "merchant", "amount", "iban", "status"]
    readonly_fields = fields
    show_change_link = True


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdmin):
    list_display = ["run_date", "livemode", "payout_count", "total", "file_built_at", "sepa_link"]
    list_filter = ["livemode"]
    fields = [
        "run_date",
        "livemode",
        "payout_count",
        "total",
        "message_id",
        "created_at",
        "file_built_at",
        "sepa_link",
    ]
    readonly_fields = fields
    inlines = [PayoutInline]
    ordering = ["-run_date", "livemode"]

    @admin.display(description=_("SEPA file"))
    def sepa_link(self, run: PayoutRun):
        if not run.sepa_file:
            return "-"
        url = reverse("admin:ledger_payoutrun_sepa", args=[run.pk])
        return format_html("<a href='{}'>{}</a>", url, _("Download (pain.001.001.03)"))

    def get_urls(self):
        return [
            path(
                "<int:run_id>/sepa/",
                self.admin_site.admin_view(self.sepa_file),
                name="ledger_payoutrun_sepa",
            ),
            *super().get_urls(),
        ]

    def sepa_file(self, request, run_id: int):
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        run = get_object_or_404(PayoutRun, pk=run_id)
        if not run.sepa_file:
            return HttpResponse(_("This run has no file."), status=404)
        mode = "live" if run.livemode else "test"
        response = HttpResponse(bytes(run.sepa_file), content_type="application/xml")
        response["Content-Disposition"] = (
            f'attachment; filename="tranche-payouts-{mode}-{run.run_date.isoformat()}.xml"'
        )
        return response


class PayoutEventInline(ReadOnlyInline):
    model = PayoutEvent
    fields = ["created_at", "from_status", "to_status", "actor", "detail"]
    readonly_fields = fields
    ordering = ["created_at"]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)


def confirm(
    modeladmin,
    request,
    queryset,
    *,
    title: str,
    question: str,
    action: str,
    form: forms.Form | None = None,
):
    """The intermediate page every irreversible admin action goes through."""
    return TemplateResponse(
        request,
        "admin/ledger/confirm_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "question": question,
            "objects": queryset,
            "action": action,
            "form": form,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
    )


def _apply(modeladmin, request, queryset, service, **kwargs) -> None:
    done = 0
    for obj in queryset:
        try:
            service(obj, **kwargs)
            done += 1
        except DomainError as error:
            modeladmin.message_user(request, f"{obj}: {error.message}", messages.WARNING)
    if done:
        modeladmin.message_user(request, _("%(count)d done.") % {"count": done})


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "merchant", "livemode", "amount", "status", "created_at"]
    list_filter = ["status", "livemode"]
    search_fields = ["=public_id", "merchant__legal_name", "merchant__public_id"]
    list_select_related = ["merchant"]
    fields = [
        "public_id",
        "run",
        "merchant",
        "livemode",
        "amount",
        "iban",
        "bic",
        "account_holder",
        "status",
        "failure_reason",
        "settlement_delay_days",
        "created_at",
        "sent_at",
        "paid_at",
        "failed_at",
    ]
    readonly_fields = fields
    inlines = [PayoutEventInline]
    actions = ["mark_paid", "mark_failed"]

    def has_change_permission(self, request, obj=None):
        # For the list's actions only: the page of one payout stays read-only.
        return obj is None and request.user.has_perm("ledger.change_payout")

    @admin.action(
        description=_("Mark the selected payouts as paid (bank statement)"), permissions=["change"]
    )
    def mark_paid(self, request, queryset):
        if "confirm" not in request.POST:
            return confirm(
                self,
                request,
                queryset,
                title=_("Mark payouts as paid"),
                question=_("These transfers appear on the bank statement. This cannot be undone."),
                action="mark_paid",
            )
        now = timezone.now()
        _apply(
            self,
            request,
            queryset,
            lambda payout: services.payout_mark_paid(payout=payout, now=now, actor=request.user),
        )
        return None

    @admin.action(
        description=_("Mark the selected payouts as failed (money back to balance)"),
        permissions=["change"],
    )
    def mark_failed(self, request, queryset):
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if "confirm" not in request.POST or not form.is_valid():
            return confirm(
                self,
                request,
                queryset,
                title=_("Mark payouts as failed"),
                question=_(
                    "The bank rejected or returned these transfers: each amount goes "
                    "back to the merchant's balance. This cannot be undone."
                ),
                action="mark_failed",
                form=form,
            )
        now = timezone.now()
        reason = form.cleaned_data["reason"]
        _apply(
            self,
            request,
            queryset,
            lambda payout: services.payout_fail(
                payout=payout, reason=reason, now=now, actor=request.user
            ),
        )
        return None


class MismatchInline(ReadOnlyInline):
    model = Mismatch
    fields = [
        "kind",
        "processor_reference",
        "report_amount",
        "ledger_amount",
        "resolved_at",
        "resolution",
    ]
    readonly_fields = fields
    show_change_link = True


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = [
        "report_date",
        "livemode",
        "report_lines",
        "ledger_entries",
        "matched",
        "mismatches",
        "ran_at",
    ]
    list_filter = ["livemode"]
    fields = list_display
    readonly_fields = fields
    inlines = [MismatchInline]
    ordering = ["-report_date", "livemode"]


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", _("Open")), ("resolved", _("Resolved"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at=None)
        if self.value() == "resolved":
            return queryset.exclude(resolved_at=None)
        return queryset


@admin.register(Mismatch)
class MismatchAdmin(ReadOnlyAdmin):
    list_display = [
        "run",
        "kind",
        "processor_reference",
        "report_amount",
        "ledger_amount",
        "resolved_at",
    ]
    list_filter = [OpenFilter, "kind", "run__livemode"]
    search_fields = ["=processor_reference"]
    list_select_related = ["run"]
    fields = [
        "run",
        "kind",
        "processor_reference",
        "report_amount",
        "ledger_amount",
        "resolved_at",
        "resolution",
    ]
    readonly_fields = fields
    actions = ["resolve"]

    def has_change_permission(self, request, obj=None):
        # For the list's action only: the page of one mismatch stays read-only.
        return obj is None and request.user.has_perm("ledger.change_mismatch")

    @admin.action(description=_("Resolve the selected mismatches"), permissions=["change"])
    def resolve(self, request, queryset):
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if "confirm" not in request.POST or not form.is_valid():
            return confirm(
                self,
                request,
                queryset,
                title=_("Resolve mismatches"),
                question=_("Say what was found and done (a correction is a posting of its own)."),
                action="resolve",
                form=form,
            )
        now = timezone.now()
        resolution = form.cleaned_data["reason"]
        _apply(
            self,
            request,
            queryset,
            lambda item: services.mismatch_resolve(
                mismatch=item, resolution=resolution, now=now, actor=request.user
            ),
        )
        return None
