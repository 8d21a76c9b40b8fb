from django.contrib import admin

from apps.payments.models import UsuryRate


@admin.register(UsuryRate)
class UsuryRateAdmin(admin.ModelAdmin):
    """The quarterly usury table: operators add each quarter's three bands when the Banque
    de France publishes them (every process picks a change up at once)."""

    list_display = ["effective_from", "max_credit_amount", "rate_bps", "source"]
    list_filter = ["effective_from"]
    ordering = ["-effective_from", "max_credit_amount"]
