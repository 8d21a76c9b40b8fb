"""Operators' view of phone checks and the SMS outbox: read-only, written by services only.

A check's code hash is never shown, nor the sealed text of a live SMS; the plain code of a
test-mode check is shown (the test checkout shows it too), a live check has none.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.common.admin import ReadOnlyAdmin

from .models import PhoneCheck, SmsMessage


@admin.register(PhoneCheck)
class PhoneCheckAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "phone", "livemode", "purpose", "subject", "status", "created_at"]
    list_filter = ["livemode", "purpose"]
    search_fields = ["=public_id", "=phone", "=subject"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    # code_hash and test_code are left out on purpose: test_code is shown through the method
    # below, and only for test-mode checks.
    fields = [
        "public_id",
        "phone",
        "livemode",
        "purpose",
        "subject",
        "language",
        "status",
        "test_mode_code",
        "created_at",
        "expires_at",
        "attempts",
        "sends",
        "last_sent_at",
        "verified_at",
        "locked_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("status"))
    def status(self, check: PhoneCheck) -> str:
        return PhoneCheck.Status(check.status_at(timezone.now())).label

    @admin.display(description=_("code (test mode)"))
    def test_mode_code(self, check: PhoneCheck) -> str:
        return "—" if check.livemode else check.test_code


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdmin):
    list_display = ["key", "phone", "livemode", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "livemode"]
    search_fields = ["=key", "=phone", "=provider_reference"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "key",
        "phone",
        "livemode",
        "status",
        "text",
        "created_at",
        "claimed_at",
        "sent_at",
        "attempts",
        "provider_reference",
        "error",
    ]
    readonly_fields = fields


# The other admin modules register themselves on import (kept apart to keep this one short).
from apps.verification import (  # noqa: E402
    admin_bank,  # noqa: F401
    admin_identity,  # noqa: F401
)
