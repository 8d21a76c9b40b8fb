from django.contrib import admin

from apps.common.admin import ReadOnlyAdmin
from apps.schedules.models import Receipt


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ("number", "payment", "instalment", "livemode", "created_at", "rendered_at")
    list_filter = ("livemode",)
    search_fields = ("number", "payment__public_id")
    list_select_related = ("payment", "instalment")
    raw_id_fields = ("payment", "instalment", "charge")
    show_full_result_count = False
