"""Operators' view of bank-data checks: read-only (written by services only), with our
analysis shown as a table and the number of transactions kept as evidence."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin
from apps.common.money import display_eur
from apps.common.templatetags.tranche import percent_from_bps
from apps.verification.models import BankCheck

ANALYSIS_AMOUNTS = (
    ("monthly_income_cents", _("Monthly income")),
    ("fixed_charges_cents", _("Fixed charges per month")),
    ("credit_repayments_cents", _("Credit repayments per month")),
    ("gambling_cents", _("Gambling per month")),
    ("living_allowance_cents", _("Living allowance per month")),
    ("repayment_capacity_cents", _("Repayment capacity per month")),
)


@admin.register(BankCheck)
class BankCheckAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "livemode",
        "purpose",
        "subject",
        "status",
        "bank_name",
        "monthly_income_cents",
        "repayment_capacity_cents",
        "created_at",
    ]
    list_filter = ["status", "livemode", "purpose"]
    search_fields = ["=public_id", "=subject", "=provider_reference"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    # The transactions themselves are left out: their count is enough here, and they are
    # personal data kept only until the retention date.
    fields = [
        "public_id",
        "livemode",
        "purpose",
        "subject",
        "status",
        "error_code",
        "provider_reference",
        "bank_name",
        "account_holder",
        "consent_at",
        "created_at",
        "analysed_at",
        "period_start",
        "period_end",
        "analysis_table",
        "transactions_count",
        "evidence_delete_after",
        "evidence_deleted_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("transactions kept"))
    def transactions_count(self, check: BankCheck) -> int:
        return len(check.transactions or [])

    @admin.display(description=_("analysis"))
    def analysis_table(self, check: BankCheck) -> str:
        analysis = check.analysis or {}
        if not analysis:
            return "—"
        rows: list[tuple[str, str]] = [
            (str(_("Months analysed")), str(analysis.get("months_analysed", ""))),
            (
                str(_("Window")),
                f"{analysis.get('window_start', '')} → {analysis.get('window_end', '')}",
            ),
        ]
        for key, label in ANALYSIS_AMOUNTS:
            if isinstance(analysis.get(key), int):
                rows.append((str(label), display_eur(analysis[key])))
        by_month = analysis.get("income_by_month_cents") or []
        rows.append((str(_("Income by month")), " / ".join(display_eur(int(c)) for c in by_month)))
        rows.append(
            (
                str(_("Regular income")),
                str(_("yes")) if analysis.get("income_regular") else str(_("no")),
            )
        )
        bps = analysis.get("debt_to_income_bps")
        rows.append(
            (
                str(_("Debt to income")),
                "—" if bps is None else percent_from_bps(bps),
            )
        )
        rows.append((str(_("Overdraft days")), str(analysis.get("overdraft_days", ""))))
        rows.append((str(_("Flags")), ", ".join(analysis.get("flags") or []) or str(_("none"))))
        if analysis.get("bank_holder_name"):
            rows.append((str(_("Holder at the bank")), analysis["bank_holder_name"]))
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )
