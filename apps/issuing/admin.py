"""Operators' pages for the customer's Tranche card: read-only (services write these rows).

Cards show what the issuer told Tranche (token, last 4 digits, expiry), never a number or a
CVC, which Tranche does not have. The sandbox issuer's own tables are an outside party's
records and are not shown here.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin, ReadOnlyInline
from apps.issuing.models import (
    CardAuthorisation,
    CardDecision,
    FundingCardSetup,
    IssuerMessage,
    VirtualCard,
)

CUSTOMER_SEARCH = ("customer__email", "=customer__phone", "=customer__public_id")


def _payment_link(payment) -> str:
    if payment is None:
        return "-"
    url = reverse("admin:payments_payment_change", args=[payment.pk])
    return format_html('<a href="{}">{}</a>', url, payment.public_id)


class AuthorisationInline(ReadOnlyInline):
    model = CardAuthorisation
    fields = readonly_fields = (
        "issuer_reference",
        "amount",
        "merchant_name",
        "merchant_category",
        "state",
        "decline_code",
        "payment",
        "requested_at",
    )
    ordering = ("-created_at", "-id")
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment")


@admin.register(VirtualCard)
class VirtualCardAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "customer",
        "state",
        "masked",
        "limit",
        "livemode",
        "created_at",
    )
    list_filter = ("state", "livemode")
    search_fields = ("=public_id", "=issuer_token", *CUSTOMER_SEARCH)
    list_select_related = ("customer",)
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "public_id",
        "customer",
        "livemode",
        "state",
        "masked",
        "exp_month",
        "exp_year",
        "limit",
        "funding_card",
        "decision",
        "issuer_token",
        "replaces",
        "created_at",
        "frozen_at",
        "closed_at",
        "details_shown_at",
    )
    inlines = [AuthorisationInline]

    @admin.display(description=_("card"), ordering="last4")
    def masked(self, card: VirtualCard) -> str:
        return f"•••• {card.last4}"


@admin.register(CardDecision)
class CardDecisionAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "customer",
        "outcome",
        "reasons",
        "limit",
        "livemode",
        "created_at",
    )
    list_filter = ("outcome", "livemode", "rules_version")
    search_fields = ("=public_id", *CUSTOMER_SEARCH)
    list_select_related = ("customer",)
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "public_id",
        "customer",
        "livemode",
        "outcome",
        "reasons",
        "limit",
        "facts",
        "rules_version",
        "created_at",
    )


@admin.register(CardAuthorisation)
class CardAuthorisationAdmin(ReadOnlyAdmin):
    list_display = (
        "issuer_reference",
        "card",
        "amount",
        "merchant_name",
        "merchant_category",
        "state",
        "decline_code",
        "payment_link",
        "requested_at",
        "decided_at",
    )
    list_filter = ("state", "livemode", "decline_code", "merchant_category")
    search_fields = ("=issuer_reference", "=public_id", "=payment__public_id", "merchant_name")
    list_select_related = ("card", "payment")
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "public_id",
        "issuer_reference",
        "livemode",
        "card",
        "amount",
        "merchant_name",
        "merchant_category",
        "merchant_country",
        "state",
        "decline_code",
        "payment_link",
        "refunded_amount",
        "cleared_amount",
        "created_at",
        "requested_at",
        "decided_at",
        "reversed_at",
        "cleared_at",
    )

    @admin.display(description=_("payment"))
    def payment_link(self, row: CardAuthorisation) -> str:
        return _payment_link(row.payment)


@admin.register(IssuerMessage)
class IssuerMessageAdmin(ReadOnlyAdmin):
    list_display = ("message_id", "kind", "livemode", "status_code", "received_at", "answered_at")
    list_filter = ("kind", "livemode", "status_code")
    search_fields = ("=message_id", "=authorisation__issuer_reference")
    list_select_related = ("authorisation",)
    ordering = ("-received_at", "-id")
    date_hierarchy = "received_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "message_id",
        "kind",
        "livemode",
        "authorisation",
        "body",
        "status_code",
        "response",
        "received_at",
        "answered_at",
    )


@admin.register(FundingCardSetup)
class FundingCardSetupAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "card", "status", "livemode", "created_at")
    list_filter = ("status", "livemode")
    search_fields = ("=public_id", "=three_ds_reference", *CUSTOMER_SEARCH)
    list_select_related = ("customer", "card")
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = readonly_fields = (
        "public_id",
        "customer",
        "livemode",
        "card",
        "status",
        "three_ds_reference",
        "created_at",
        "completed_at",
    )
