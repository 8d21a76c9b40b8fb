from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin
from apps.common.errors import DomainError
from apps.payments.models import PaymentState
from apps.schedules.models import DefaultedPayment, Receipt
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
