"""Operators' view of refunds: read-only (written by services only), with each card refund that
carries one, and an action that sends the card refunds still waiting for the processor again.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin, ReadOnlyInline
from apps.refunds.models import CardRefund, Refund
from apps.refunds.services import refund_send_to_card


class CardRefundInline(ReadOnlyInline):
    model = CardRefund
    fields = readonly_fields = (
        "number",
        "charge_reference",
        "amount",
        "status",
        "failure_code",
        "processor_reference",
        "idempotency_key",
        "attempts",
        "created_at",
        "finished_at",
    )
    ordering = ("number",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("charge")

    @admin.display(description=_("card charge"))
    def charge_reference(self, part: CardRefund) -> str:
        return part.charge.processor_reference or part.charge.idempotency_key


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """A refund ``pending`` has card refunds the processor has not confirmed yet: the sweep
    (``tasks.send_pending_refunds``) sends them again; the action does it now. A ``failed``
    refund was refused by the processor: sending it again would be refused again, so the
    action only says so (the money stays owed to the customer in the ledger)."""

    list_display = (
        "public_id",
        "payment",
        "merchant",
        "amount",
        "state",
        "origin",
        "created_at",
    )
    list_filter = ("state", "origin", "livemode")
    search_fields = ("=public_id", "=payment__public_id", "merchant_reference")
    list_select_related = ("payment", "merchant")
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Refund._meta.fields]
    raw_id_fields = ("payment", "merchant", "requested_by", "api_key")
    inlines = [CardRefundInline]
    actions = ["send_to_card_again"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Actions need the change permission; the fields stay read-only.
        return request.user.is_superuser or request.user.has_perm("refunds.change_refund")

    @admin.action(description=_("Send the card refunds again"))
    def send_to_card_again(self, request, queryset):
        finished = 0
        for refund in queryset.order_by("created_at", "id"):
            if refund.state == Refund.State.FAILED:
                self.message_user(
                    request,
                    _(
                        "%(refund)s: the processor refused this card refund; it is not sent "
                        "again. The customer must be paid back another way (a bank transfer)."
                    )
                    % {"refund": refund.public_id},
                    messages.WARNING,
                )
                continue
            if refund.state != Refund.State.PENDING:
                self.message_user(
                    request,
                    _("%(refund)s: already refunded to the card, nothing to send.")
                    % {"refund": refund.public_id},
                    messages.INFO,
                )
                continue
            # No transaction is open here (admin actions run outside one): the service calls
            # the processor, each card refund with its own key, so a repeat refunds once.
            refund = refund_send_to_card(refund_id=refund.pk, now=timezone.now())
            if refund.state == Refund.State.SUCCEEDED:
                finished += 1
            elif refund.state == Refund.State.FAILED:
                self.message_user(
                    request,
                    _(
                        "%(refund)s: the processor refused the card refund. The customer must "
                        "be paid back another way (a bank transfer)."
                    )
                    % {"refund": refund.public_id},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _(
                        "%(refund)s: the processor did not answer; the card refund will be "
                        "sent again automatically."
                    )
                    % {"refund": refund.public_id},
                    messages.WARNING,
                )
        if finished:
            self.message_user(
                request,
                _("%(count)d refund(s) given back to the card.") % {"count": finished},
                messages.SUCCESS,
            )
