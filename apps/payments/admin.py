from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext as _

import apps.payments.admin_decisions  # noqa: F401  (registers the credit-decision pages)
from apps.common.config_cache import config_cache
from apps.common.dates import business_date
from apps.payments import admin_payments  # noqa: F401  (registers the payment pages)
from apps.payments.models import UsuryRate
from apps.payments.regulation import quarter_start


@admin.register(UsuryRate)
class UsuryRateAdmin(admin.ModelAdmin):
    """The quarterly usury table: operators add each quarter's three bands when the Banque
    de France publishes them (every process picks a change up at once)."""

    list_display = ["effective_from", "max_credit_amount", "rate_bps", "source"]

    def changelist_view(self, request, extra_context=None):
        quarter = quarter_start(business_date(timezone.now()))
        if not UsuryRate.objects.filter(effective_from=quarter).exists():
            messages.warning(
                request,
                _(
                    "No usury rates for the quarter starting %(quarter)s: every plan that is "
                    "a consumer credit is refused until they are added."
                )
                % {"quarter": quarter.isoformat()},
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        config_cache.clear_now_and_after_commit()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        config_cache.clear_now_and_after_commit()

    list_filter = ["effective_from"]
    ordering = ["-effective_from", "max_credit_amount"]
