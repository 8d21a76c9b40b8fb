"""Operators' view of identity checks: read-only, written by services only.

The photos are shown through the staff-only view that decrypts them on the fly, and only while
they are kept; the provider's answer is shown as the evidence it is.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin

from .identity_files import PHOTO_FIELDS
from .models import IdentityCheck


@admin.register(IdentityCheck)
class IdentityCheckAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "livemode",
        "purpose",
        "subject",
        "status",
        "result_code",
        "names_match",
        "birth_date_match",
        "submissions",
        "created_at",
    ]
    list_filter = ["status", "livemode", "purpose", "result_code"]
    search_fields = ["=public_id", "=subject", "=provider_reference"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "public_id",
        "livemode",
        "purpose",
        "subject",
        "status",
        "result_code",
        "expected_first_name",
        "expected_last_name",
        "expected_birth_date",
        "names_match",
        "birth_date_match",
        "photos",
        "submissions",
        "provider_reference",
        "provider_answer",
        "created_at",
        "submitted_at",
        "decided_at",
        "files_delete_after",
        "files_deleted_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("photos"))
    def photos(self, check: IdentityCheck) -> str:
        if check.files_deleted_at is not None:
            return _("Deleted at the end of the retention period.")
        shown = [
            (reverse("verification:identity-file", args=[check.public_id, which]), which)
            for which in PHOTO_FIELDS
            if getattr(check, f"{which}_file").name
        ]
        if not shown:
            return _("No photos sent yet.")
        return format_html_join(
            " ",
            '<a href="{0}" target="_blank" rel="noopener noreferrer">'
            '<img src="{0}" alt="{1}" style="max-width:240px;max-height:160px;'
            'border:1px solid #ccc"></a>',
            shown,
        )

    @admin.display(description=_("provider's answer"))
    def provider_answer(self, check: IdentityCheck) -> str:
        if not check.provider_result:
            return "—"
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>",
            json.dumps(check.provider_result, indent=2, sort_keys=True, ensure_ascii=False),
        )
