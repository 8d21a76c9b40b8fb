from django.contrib import admin, messages
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.common.errors import DomainError
from apps.merchants import services
from apps.merchants.models import APIKey, FeePlan, Membership, Merchant, MerchantEvent


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request, obj=None):
        return False


class FeePlanInline(admin.TabularInline):
    model = FeePlan
    extra = 0
    fields = [
        "kind",
        "installments_count",
        "deferred_days",
        "deferred_months",
        "allowed",
        "min_purchase_amount",
        "max_purchase_amount",
        "merchant_fee_variable",
        "customer_fee_variable",
        "customer_lending_rate",
    ]
    show_change_link = True


class MerchantEventInline(admin.TabularInline):
    model = MerchantEvent
    extra = 0
    fields = ["created_at", "kind", "from_status", "to_status", "actor", "detail"]
    readonly_fields = fields
    ordering = ["-created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["legal_name", "public_id", "country", "status", "store_only", "created_at"]
    list_filter = ["status", "country", "store_only"]
    search_fields = ["legal_name", "public_id", "contact_email", "website"]
    readonly_fields = ["public_id", "status", "created_at", "activated_at"]
    inlines = [MembershipInline, FeePlanInline, MerchantEventInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["activate", "suspend"]

    def save_model(self, request, obj, form, change):
        # Bank details go through their service (normalised, and the change recorded).
        payout_details = (obj.payout_iban, obj.payout_bic)
        if change:
            obj.payout_iban = form.initial.get("payout_iban", "")
            obj.payout_bic = form.initial.get("payout_bic", "")
        else:
            obj.created_at = timezone.now()
            obj.payout_iban = obj.payout_bic = ""
        super().save_model(request, obj, form, change)
        services.merchant_payout_details_update(
            merchant=obj,
            iban=payout_details[0],
            bic=payout_details[1],
            now=timezone.now(),
            actor=request.user,
        )

    def _transition(self, request, queryset, service) -> int:
        done = 0
        for merchant in queryset:
            try:
                service(merchant=merchant, now=timezone.now(), actor=request.user)
                done += 1
            except DomainError as error:
                self.message_user(request, f"{merchant}: {error.message}", messages.WARNING)
        return done

    @admin.action(description=_("Activate the selected merchants"))
    def activate(self, request, queryset):
        if done := self._transition(request, queryset, services.merchant_activate):
            message = ngettext(
                "%(count)d merchant activated.", "%(count)d merchants activated.", done
            )
            self.message_user(request, message % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Suspend the selected merchants"))
    def suspend(self, request, queryset):
        if done := self._transition(request, queryset, services.merchant_suspend):
            message = ngettext(
                "%(count)d merchant suspended.", "%(count)d merchants suspended.", done
            )
            self.message_user(request, message % {"count": done}, messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "merchant__legal_name"]
    raw_id_fields = ["user", "merchant"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created by merchants or the CLI, where the secret is shown once; the admin
    shows only their prefix and state, never the hash."""

    list_display = [
        "display_prefix",
        "merchant",
        "livemode",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["livemode"]
    search_fields = ["display_prefix", "merchant__legal_name", "merchant__public_id"]
    fields = [
        "merchant",
        "display_prefix",
        "livemode",
        "created_at",
        "created_by",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "replaced_by",
    ]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revoke the selected keys now"))
    def revoke(self, request, queryset):
        for key in queryset:
            try:
                services.api_key_revoke(key=key, now=timezone.now(), actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{key}: {error.message}", messages.WARNING)


@admin.register(FeePlan)
class FeePlanAdmin(admin.ModelAdmin):
    list_display = [
        "merchant",
        "kind",
        "installments_count",
        "deferred_days",
        "deferred_months",
        "allowed",
        "merchant_fee_variable",
        "customer_lending_rate",
    ]
    list_filter = ["kind", "allowed", "installments_count"]
    search_fields = ["merchant__legal_name", "merchant__public_id"]
    raw_id_fields = ["merchant"]
