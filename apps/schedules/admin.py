from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin
from apps.common.errors import DomainError
from apps.payments.models import PaymentState
from apps.schedules.models import DefaultedPayment, Receipt, SupportRequest
from apps.schedules.services.dunning import collection_close


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ("number", "payment", "instalment", "livemode", "created_at", "rendered_at")
    list_filter = ("livemode",)
    search_fields = ("number", "payment__public_id")
    list_select_related = ("payment", "instalment")
    raw_id_fields = ("payment", "instalment", "charge")
    show_full_result_count = False


@admin.register(DefaultedPayment)
class DefaultedPaymentAdmin(ReadOnlyAdmin):
    """The payments in default; "Close the collection" ends what is left to recover (the
    claimed instalments become covered), after a confirmation page."""

    list_display = ("public_id", "merchant", "livemode", "purchase_amount", "updated_at")
    list_filter = ("livemode",)
    search_fields = ("=public_id", "customer__email")
    list_select_related = ("merchant",)
    show_full_result_count = False
    actions = ["close_collection"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(state=PaymentState.DEFAULT)

    def has_change_permission(self, request, obj=None) -> bool:
        # Actions need the change permission; the fields stay read-only.
        return request.user.is_superuser or request.user.has_perm("payments.change_payment")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in DefaultedPayment._meta.fields]

    @admin.action(description=_("Close the collection of the selected payments"))
    def close_collection(self, request, queryset):
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/schedules/close_collection_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Close the collection?"),
                    "payments": queryset,
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        closed = 0
        note = request.POST.get("note", "").strip()[:500]
        for payment in queryset:
            try:
                collection_close(payment_id=payment.pk, now=timezone.now(), note=note)
                closed += 1
            except DomainError as error:
                self.message_user(request, f"{payment.public_id}: {error.message}", messages.ERROR)
        if closed:
            self.message_user(
                request, _("Collection closed for %(count)d payment(s).") % {"count": closed}
            )
        return None


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    """Customers' requests from the portal (longer delays, questions, corrections, deletions).
    What the customer sent is read-only; operators set the status and their note, or use
    "Mark done" / "Close" on a selection (both record who handled it, and when)."""

    list_display = (
        "created_at",
        "public_id",
        "kind",
        "status",
        "customer_email",
        "payment",
        "requested_date",
        "livemode",
    )
    list_filter = ("kind", "status", "livemode")
    search_fields = ("=public_id", "email", "customer__email", "=payment__public_id")
    list_select_related = ("customer", "payment")
    ordering = ("-created_at", "-pk")
    show_full_result_count = False
    raw_id_fields = ("customer", "payment", "instalment")
    actions = ["mark_done", "close"]
    fields = (
        "public_id",
        "kind",
        "status",
        "livemode",
        "created_at",
        "customer",
        "name",
        "email",
        "payment",
        "instalment",
        "requested_date",
        "message",
        "operator_note",
        "handled_by",
        "handled_at",
    )
    readonly_fields = tuple(field for field in fields if field not in ("status", "operator_note"))

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # requests come from the portal

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # kept, as the record of what was asked and done

    @admin.display(description=_("customer email"), ordering="email")
    def customer_email(self, obj: SupportRequest) -> str:
        return obj.email or (obj.customer.email if obj.customer_id else "")

    def save_model(self, request, obj, form, change) -> None:
        if "status" in form.changed_data:
            handled = obj.status != SupportRequest.Status.OPEN
            obj.handled_by = request.user if handled else None
            obj.handled_at = timezone.now() if handled else None
        super().save_model(request, obj, form, change)

    def _handle(self, request, queryset, status: str) -> int:
        count = queryset.exclude(status=status).update(
            status=status, handled_by=request.user, handled_at=timezone.now()
        )
        self.message_user(request, _("%(count)d request(s) updated.") % {"count": count})
        return count

    @admin.action(description=_("Mark the selected requests done"))
    def mark_done(self, request, queryset):
        self._handle(request, queryset, SupportRequest.Status.DONE)

    @admin.action(description=_("Close the selected requests"))
    def close(self, request, queryset):
        self._handle(request, queryset, SupportRequest.Status.CLOSED)
