"""Operators' pages for payments: read-only, with the potential-fraud flags merchants raise and
the notifications sent to them (which an operator may send again)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin, ReadOnlyInline
from apps.common.errors import DomainError
from apps.payments.models import (
    Charge,
    CreditDecision,
    Instalment,
    Notification,
    NotificationAttempt,
    Order,
    Payment,
    PaymentEvent,
    PotentialFraudFlag,
)
from apps.payments.notifications import notification_resend


class InstalmentInline(ReadOnlyInline):
    model = Instalment
    fields = readonly_fields = (
        "number",
        "due_date",
        "purchase_amount",
        "customer_fee",
        "customer_interest",
        "state",
        "paid_at",
    )


class OrderInline(ReadOnlyInline):
    model = Order
    fk_name = "payment"
    fields = readonly_fields = (
        "merchant_reference",
        "status",
        "carrier",
        "tracking_number",
        "detached_at",
        "created_at",
    )


class FraudFlagInline(ReadOnlyInline):
    model = PotentialFraudFlag
    fields = readonly_fields = ("reason", "created_at")


class ChargeInline(ReadOnlyInline):
    model = Charge
    fields = readonly_fields = (
        "kind",
        "attempt",
        "amount",
        "status",
        "failure_code",
        "processor_reference",
        "created_at",
        "finished_at",
    )


class DecisionInline(ReadOnlyInline):
    model = CreditDecision
    fields = readonly_fields = ("outcome", "score", "reasons", "rules_version", "created_at")


class NotificationInline(ReadOnlyInline):
    model = Notification
    fields = readonly_fields = ("event", "status", "attempts", "next_attempt_at", "url")
    show_change_link = True


class EventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = readonly_fields = ("created_at", "kind", "from_state", "to_state", "detail")


class FraudFlaggedFilter(admin.SimpleListFilter):
    title = _("potential fraud")
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", _("Flagged by the merchant"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(fraud_flags__isnull=False).distinct()
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "merchant",
        "livemode",
        "state",
        "purchase_amount",
        "installments_count",
        "created_at",
    )
    list_filter = ("state", "livemode", FraudFlaggedFilter, "origin")
    search_fields = ("=public_id", "customer__email", "orders__merchant_reference")
    list_select_related = ("merchant",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Payment._meta.fields]
    inlines = [
        InstalmentInline,
        OrderInline,
        FraudFlagInline,
        DecisionInline,
        ChargeInline,
        NotificationInline,
        EventInline,
    ]


@admin.register(PotentialFraudFlag)
class PotentialFraudFlagAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "payment_link", "merchant", "reason")
    list_select_related = ("payment__merchant",)
    search_fields = ("=payment__public_id", "reason")
    date_hierarchy = "created_at"

    @admin.display(description=_("payment"))
    def payment_link(self, flag: PotentialFraudFlag):
        url = reverse("admin:payments_payment_change", args=[flag.payment_id])
        return format_html('<a href="{}">{}</a>', url, flag.payment.public_id)

    @admin.display(description=_("merchant"))
    def merchant(self, flag: PotentialFraudFlag):
        return flag.payment.merchant


class AttemptInline(ReadOnlyInline):
    model = NotificationAttempt
    fields = readonly_fields = (
        "number",
        "created_at",
        "status_code",
        "latency_ms",
        "error",
        "response_snippet",
    )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("payment", "event", "status", "attempts", "next_attempt_at", "created_at")
    list_filter = ("status", "event")
    search_fields = ("=payment__public_id",)
    list_select_related = ("payment",)
    readonly_fields = [field.name for field in Notification._meta.fields]
    inlines = [AttemptInline]
    actions = ["send_again"]

    @admin.action(description=_("Send the selected notifications again"))
    def send_again(self, request, queryset):
        sent = 0
        for notification in queryset:
            try:
                notification_resend(notification=notification, now=timezone.now())
                sent += 1
            except DomainError as error:
                self.message_user(
                    request, f"{notification.payment_id}: {error.message}", messages.WARNING
                )
        if sent:
            self.message_user(request, _("%(count)d notification(s) queued.") % {"count": sent})

    def has_change_permission(self, request, obj=None) -> bool:
        # Actions need the change permission; the fields stay read-only.
        return request.user.is_superuser or request.user.has_perm("payments.change_notification")
