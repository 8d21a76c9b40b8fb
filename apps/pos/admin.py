"""Operators' in-store pages: terminals and sessions, read-only (a terminal is revoked and
a session cancelled by the merchant, through the dashboard or the API)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin
from apps.pos.models import PosSession, Terminal


class RevokedFilter(admin.SimpleListFilter):
    title = _("revoked")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


@admin.register(Terminal)
class TerminalAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "name",
        "shop",
        "merchant",
        "livemode",
        "display_prefix",
        "last_seen_at",
        "revoked_at",
    ]
    list_filter = ["livemode", RevokedFilter]
    search_fields = ["public_id", "name", "shop", "serial_number", "merchant__legal_name"]
    list_select_related = ["merchant"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    # Never the secret's hash: the display prefix is enough to recognise a secret.
    fields = [
        "public_id",
        "merchant",
        "livemode",
        "name",
        "shop",
        "serial_number",
        "display_prefix",
        "created_at",
        "created_by",
        "last_seen_at",
        "revoked_at",
        "revoked_by",
    ]
    readonly_fields = fields


@admin.register(PosSession)
class PosSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "created_at",
        "merchant",
        "livemode",
        "amount",
        "state",
        "terminal",
        "staff_name",
        "reference",
    ]
    list_filter = ["state", "livemode", ("terminal", admin.EmptyFieldListFilter)]
    search_fields = ["public_id", "reference", "payment__public_id", "merchant__legal_name"]
    list_select_related = ["merchant", "terminal"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "public_id",
        "merchant",
        "livemode",
        "terminal",
        "staff_user",
        "staff_name",
        "amount",
        "customer_phone",
        "reference",
        "state",
        "version",
        "payment",
        "created_at",
        "updated_at",
        "expires_at",
        "link_sent_at",
        "opened_at",
        "finished_at",
    ]
    readonly_fields = fields
