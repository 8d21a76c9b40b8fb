"""The merchant dashboard's pages: registration, account, settings, API keys, team."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.merchants import selectors, services
from apps.merchants.access import merchant_required
from apps.merchants.forms import (
    MerchantSettingsForm,
    NewKeyForm,
    RegistrationForm,
    StaffInviteForm,
    StaffRoleForm,
)
from apps.merchants.models import APIKey, Membership


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
        return redirect("dashboard:home")
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
            return redirect("dashboard:home")
    return render(request, "merchants/register.html", {"form": form})


@merchant_required
def account(request):
    merchant = request.membership.merchant
    plans = selectors.fee_plans_list(merchant=merchant)
    return render(request, "merchants/account.html", {"merchant": merchant, "fee_plans": plans})


@merchant_required
@require_http_methods(["GET", "POST"])
def settings_page(request):
    merchant = request.membership.merchant
    can_edit = request.membership.can_manage_keys
    if request.method == "POST" and not can_edit:
        raise PermissionDenied
    form = MerchantSettingsForm(
        request.POST or None, instance=merchant, request=request, editable=can_edit
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.merchant_settings_update(
            merchant=merchant,
            return_url=data["return_url"],
            customer_cancel_url=data["customer_cancel_url"],
            ipn_callback_url=data["ipn_callback_url"],
            excluded_categories=data["excluded_categories"],
            authorisation_policy=data["authorisation_policy"],
            notification_email=data["notification_email"],
            category=data["category"],
            listed_in_directory=data["listed_in_directory"],
            payout_iban=data["payout_iban"],
            payout_bic=data["payout_bic"],
            now=timezone.now(),
            actor=request.user,
        )
        messages.success(request, _("Settings saved."))
        return redirect("merchants:settings")
    return render(
        request,
        "merchants/settings.html",
        {"form": form, "can_edit": can_edit, "merchant": merchant},
    )


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


# --- team ------------------------------------------------------------------------------


def _member_or_404(request, membership_id: int) -> Membership:
    """A member of the user's merchant, for an owner or admin; staff members get 403."""
    if not request.membership.can_manage_keys:
        raise PermissionDenied
    try:
        return selectors.staff_member_get(merchant=request.merchant, membership_id=membership_id)
    except Membership.DoesNotExist as exc:
        raise Http404 from exc


def _staff_page(request, invite_form):
    actor = request.membership
    members = list(selectors.staff_list(merchant=request.merchant))
    owners = sum(member.role == Membership.Role.OWNER for member in members)
    grantable = services.ROLES_GRANTABLE_BY[actor.role]
    rows = []
    for member in members:
        manageable = services.staff_may_manage(actor=actor, member=member)
        last_owner = member.role == Membership.Role.OWNER and owners == 1
        rows.append(
            {
                "member": member,
                "pending": not member.user.has_usable_password(),
                "is_me": member.pk == actor.pk,
                "last_owner": last_owner,
                "may_remove": manageable and not last_owner,
                "may_resend": manageable and not member.user.has_usable_password(),
                "roles": [
                    (value, label)
                    for value, label in Membership.Role.choices
                    if value in grantable or value == member.role
                ]
                if manageable and actor.role == Membership.Role.OWNER and not last_owner
                else [],
            }
        )
    return render(
        request,
        "merchants/staff.html",
        {
            "rows": rows,
            "can_manage": actor.can_manage_keys,
            "form": invite_form,
            "merchant": request.merchant,
        },
    )


@merchant_required
@require_http_methods(["GET", "POST"])
def staff(request):
    """The team: everyone sees it; owners and admins invite (POST here) and manage."""
    actor = request.membership
    if request.method == "POST" and not actor.can_manage_keys:
        raise PermissionDenied
    grantable = services.ROLES_GRANTABLE_BY[actor.role]
    form = StaffInviteForm(request.POST or None, grantable=grantable)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = services.staff_invite(
                merchant=request.merchant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=actor,
                now=timezone.now(),
                language=get_language() or settings.LANGUAGE_CODE,
            )
        except services.StaffAlreadyMember as error:
            form.add_error("email", error.message)
        except services.StaffNotAllowed as error:
            form.add_error("role", error.message)
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s.") % {"email": invitation.membership.user.email},
            )
            return redirect("merchants:staff")
    return _staff_page(request, form)


@merchant_required
@require_POST
def staff_role(request, membership_id: int):
    member = _member_or_404(request, membership_id)
    form = StaffRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose owner, administrator or staff."))
        return redirect("merchants:staff")
    try:
        member = services.staff_role_change(
            member=member,
            role=form.cleaned_data["role"],
            actor=request.membership,
            now=timezone.now(),
        )
    except services.StaffNotAllowed as exc:
        raise PermissionDenied from exc
    except (services.StaffLastOwner, services.StaffMemberGone) as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(email)s is now %(role)s.")
            % {"email": member.user.email, "role": member.get_role_display().lower()},
        )
    return redirect("merchants:staff")


@merchant_required
@require_http_methods(["GET", "POST"])
def staff_remove(request, membership_id: int):
    member = _member_or_404(request, membership_id)
    if request.method == "GET":
        return render(
            request,
            "merchants/staff_remove_confirm.html",
            {"member": member, "is_me": member.pk == request.membership.pk},
        )
    try:
        services.staff_remove(member=member, actor=request.membership, now=timezone.now())
    except services.StaffNotAllowed as exc:
        raise PermissionDenied from exc
    except (services.StaffLastOwner, services.StaffMemberGone) as error:
        messages.error(request, error.message)
        return redirect("merchants:staff")
    if member.pk == request.membership.pk:  # left the team: nothing to show here any more
        return redirect("dashboard:home")
    messages.success(request, _("%(email)s no longer has access.") % {"email": member.user.email})
    return redirect("merchants:staff")


@merchant_required
@require_POST
def staff_invitation_resend(request, membership_id: int):
    member = _member_or_404(request, membership_id)
    try:
        services.staff_invitation_resend(
            member=member,
            actor=request.membership,
            now=timezone.now(),
            language=get_language() or settings.LANGUAGE_CODE,
        )
    except services.StaffNotAllowed as exc:
        raise PermissionDenied from exc
    except (services.StaffInvitationNotPending, services.StaffMemberGone) as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("Invitation sent again to %(email)s.") % {"email": member.user.email}
        )
    return redirect("merchants:staff")
