"""The merchant dashboard's pages: registration, home, API keys."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.merchants import selectors, services
from apps.merchants.forms import MerchantSettingsForm, NewKeyForm, RegistrationForm
from apps.merchants.models import APIKey


def merchant_required(view):
    """Log-in required, and the user must belong to a merchant (``request.membership``)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.membership = selectors.membership_for_user(request.user)
        if request.membership is None:
            return render(request, "merchants/no_merchant.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _key_or_404(request, key_id: int) -> APIKey:
    if not request.membership.can_manage_keys:
        raise PermissionDenied
    try:
        return selectors.api_key_get(merchant=request.membership.merchant, key_id=key_id)
    except APIKey.DoesNotExist as exc:
        raise Http404 from exc


@require_http_methods(["GET", "POST"])
def register(request):
    if request.user.is_authenticated and selectors.membership_for_user(request.user):
        return redirect("merchants:dashboard")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            membership = services.merchant_register(
                legal_name=data["legal_name"],
                country=data["country"],
                website=data["website"],
                store_only=data["store_only"],
                email=data["email"],
                password=data["password1"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                now=timezone.now(),
            )
        except services.EmailAlreadyRegistered:  # signed up at the same moment elsewhere
            form.add_error("email", _("An account already exists with this email address."))
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                _("Welcome! Your account is pending: we will activate it after a quick review."),
            )
            return redirect("merchants:dashboard")
    return render(request, "merchants/register.html", {"form": form})


@merchant_required
def dashboard(request):
    merchant = request.membership.merchant
    plans = selectors.fee_plans_list(merchant=merchant)
    return render(request, "merchants/dashboard.html", {"merchant": merchant, "fee_plans": plans})


@merchant_required
@require_http_methods(["GET", "POST"])
def settings_page(request):
    merchant = request.membership.merchant
    can_edit = request.membership.can_manage_keys
    form = MerchantSettingsForm(request.POST or None, instance=merchant)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        if form.is_valid():
            services.merchant_settings_update(
                merchant=merchant,
                return_url=form.cleaned_data["return_url"],
                customer_cancel_url=form.cleaned_data["customer_cancel_url"],
                ipn_callback_url=form.cleaned_data["ipn_callback_url"],
                excluded_categories=form.cleaned_data["excluded_categories"],
                authorisation_policy=form.cleaned_data["authorisation_policy"],
                now=timezone.now(),
                actor=request.user,
            )
            messages.success(request, _("Settings saved."))
            return redirect("merchants:settings")
    return render(request, "merchants/settings.html", {"form": form, "can_edit": can_edit})


def _api_page(request, *, issued=None, status=200):
    merchant = request.membership.merchant
    now = timezone.now()
    keys = [(key, key.state(now)) for key in selectors.api_keys_list(merchant=merchant)]
    return render(
        request,
        "merchants/api_keys.html",
        {
            "merchant": merchant,
            "test_keys": [(key, state) for key, state in keys if not key.livemode],
            "live_keys": [(key, state) for key, state in keys if key.livemode],
            "issued": issued,
            "form": NewKeyForm(),
        },
        status=status,
    )


@never_cache  # the page may show a new secret: no browser or proxy may keep it
@merchant_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    if request.method == "GET":
        return _api_page(request)
    if not request.membership.can_manage_keys:
        raise PermissionDenied
    form = NewKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose test or live."))
        return redirect("merchants:api-keys")
    issued = services.api_key_create(
        merchant=request.membership.merchant,
        livemode=form.cleaned_data["mode"] == "live",
        now=timezone.now(),
        created_by=request.user,
    )
    # The secret is rendered in this response only; it is never stored nor redirected with.
    return _api_page(request, issued=issued)


@never_cache
@merchant_required
@require_http_methods(["GET", "POST"])
def api_key_rotate(request, key_id: int):
    key = _key_or_404(request, key_id)
    if request.method == "GET":
        return render(
            request,
            "merchants/api_key_confirm.html",
            {"key": key, "action": "rotate", "grace_hours": settings.API_KEY_ROTATION_GRACE_HOURS},
        )
    try:
        issued = services.api_key_rotate(key=key, now=timezone.now(), actor=request.user)
    except services.KeyNotActive:
        messages.error(request, _("Only an active key can be rotated."))
        return redirect("merchants:api-keys")
    return _api_page(request, issued=issued)


@merchant_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request, key_id: int):
    key = _key_or_404(request, key_id)
    if request.method == "GET":
        return render(request, "merchants/api_key_confirm.html", {"key": key, "action": "revoke"})
    try:
        services.api_key_revoke(key=key, now=timezone.now(), actor=request.user)
    except services.KeyNotActive:
        messages.error(request, _("This key is already revoked or expired."))
    else:
        messages.success(request, _("Key %(prefix)s… revoked.") % {"prefix": key.display_prefix})
    return redirect("merchants:api-keys")
