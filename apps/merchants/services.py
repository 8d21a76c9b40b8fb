"""Merchant use cases: registration, activation, staff, API keys and fee plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext_lazy as _

from apps.common.config_cache import config_cache
from apps.common.emails import email_queue
from apps.common.errors import DomainError, InvalidTransition
from apps.common.signing import seal
from apps.merchants.fee_plan_specs import DEFAULT_FEE_PLANS_FILE, load_fee_plan_specs
from apps.merchants.keys import DISPLAY_PREFIX_LENGTH, generate_secret, hash_secret
from apps.merchants.models import (
    MERCHANT_TRANSITIONS,
    APIKey,
    FeePlan,
    Membership,
    Merchant,
    MerchantEvent,
    compact_bic,
    compact_iban,
)


class EmailAlreadyRegistered(DomainError):
    code = "email_already_registered"
    default_message = "An account already exists with this email address."


class KeyNotActive(DomainError):
    code = "api_key_not_active"
    default_message = "This API key is already revoked or expired."


def _config_changed() -> None:
    """Keys or a merchant changed: other processes learn it from the database's notification
    at commit (config_cache.py); this process forgets its cached lookups at once."""
    config_cache.clear_now_and_after_commit()


# --- merchants -------------------------------------------------------------------------


@transaction.atomic
def merchant_create(
    *,
    legal_name: str,
    country: str,
    contact_email: str,
    now: datetime,
    website: str = "",
    store_only: bool = False,
) -> Merchant:
    """A new merchant, pending activation."""
    merchant = Merchant.objects.create(
        legal_name=legal_name,
        country=country.upper(),
        contact_email=contact_email,
        website=website,
        store_only=store_only,
        created_at=now,
    )
    MerchantEvent.objects.create(
        merchant=merchant, kind="created", to_status=merchant.status, created_at=now
    )
    return merchant


@transaction.atomic
def merchant_register(
    *,
    legal_name: str,
    country: str,
    website: str,
    store_only: bool,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    now: datetime,
) -> Membership:
    """Self-service sign-up: a pending merchant and its owner's dashboard login."""
    user = user_create(email=email, password=password, first_name=first_name, last_name=last_name)
    merchant = merchant_create(
        legal_name=legal_name,
        country=country,
        contact_email=email,
        website=website,
        store_only=store_only,
        now=now,
    )
    return Membership.objects.create(
        user=user, merchant=merchant, role=Membership.Role.OWNER, created_at=now
    )


def merchant_transition(
    *,
    merchant: Merchant,
    to_status: str,
    now: datetime,
    actor: AbstractBaseUser | None = None,
    detail: str = "",
) -> Merchant:
    """Move a merchant to another status under a row lock, following MERCHANT_TRANSITIONS."""
    with transaction.atomic():
        locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
        if to_status not in MERCHANT_TRANSITIONS[locked.status]:
            raise InvalidTransition("merchant", locked.status, to_status)
        from_status = locked.status
        locked.status = to_status
        fields = ["status"]
        if to_status == Merchant.Status.ACTIVE and locked.activated_at is None:
            locked.activated_at = now
            fields.append("activated_at")
        locked.save(update_fields=fields)
        _config_changed()
        MerchantEvent.objects.create(
            merchant=locked,
            kind="status_changed",
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            detail=detail,
            created_at=now,
        )
        if to_status == Merchant.Status.ACTIVE and not locked.fee_plans.exists():
            fee_plans_install_defaults(merchant=locked)
    return locked


def merchant_activate(
    *, merchant: Merchant, now: datetime, actor: AbstractBaseUser | None = None
) -> Merchant:
    """An operator opens the account; the default fee plans come with the first activation."""
    return merchant_transition(
        merchant=merchant, to_status=Merchant.Status.ACTIVE, now=now, actor=actor
    )


def merchant_suspend(
    *, merchant: Merchant, now: datetime, actor: AbstractBaseUser | None = None, detail: str = ""
) -> Merchant:
    return merchant_transition(
        merchant=merchant, to_status=Merchant.Status.SUSPENDED, now=now, actor=actor, detail=detail
    )


# Sentinel for the optional settings of merchant_settings_update: "leave it as it is".
UNCHANGED: Any = object()


@transaction.atomic
def merchant_settings_update(
    *,
    merchant: Merchant,
    return_url: str,
    customer_cancel_url: str,
    ipn_callback_url: str,
    excluded_categories: list[str],
    authorisation_policy: str,
    now: datetime,
    actor: AbstractBaseUser | None = None,
    notification_email: str = UNCHANGED,
    payout_iban: str = UNCHANGED,
    payout_bic: str = UNCHANGED,
    category: str = UNCHANGED,
    listed_in_directory: bool = UNCHANGED,
) -> Merchant:
    """Set the merchant's payment defaults, its email for notifications, its place in the
    partner directory (category, listed or not) and where payouts go; records which
    settings changed (``settings_changed``) and, apart, a change of bank details
    (``payout_details_changed``, as merchant_payout_details_update does).

    The optional settings left out stay as they are. The IBAN and BIC are validated and
    stored compact (ValidationError otherwise); the caller confirms who asks for a change
    of IBAN (the settings page asks for the user's password).
    """
    values: dict[str, Any] = {
        "return_url": return_url,
        "customer_cancel_url": customer_cancel_url,
        "ipn_callback_url": ipn_callback_url,
        "excluded_categories": excluded_categories,
        "authorisation_policy": authorisation_policy,
    }
    if notification_email is not UNCHANGED:
        values["notification_email"] = notification_email.strip()
    if category is not UNCHANGED:
        if category and category not in Merchant.Category.values:
            raise ValueError(f"unknown merchant category {category!r}")
        values["category"] = category
    if listed_in_directory is not UNCHANGED:
        values["listed_in_directory"] = bool(listed_in_directory)
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    changed = [field for field, value in values.items() if getattr(locked, field) != value]
    if changed:
        for field in changed:
            setattr(locked, field, values[field])
        locked.save(update_fields=changed)
        _config_changed()
        MerchantEvent.objects.create(
            merchant=locked,
            kind="settings_changed",
            actor=actor,
            detail=", ".join(changed)[:200],
            created_at=now,
        )
    if payout_iban is not UNCHANGED or payout_bic is not UNCHANGED:
        _payout_details_set(
            locked,
            iban=locked.payout_iban if payout_iban is UNCHANGED else payout_iban,
            bic=locked.payout_bic if payout_bic is UNCHANGED else payout_bic,
            now=now,
            actor=actor,
        )
    return locked


def merchant_payout_details_update(
    *,
    merchant: Merchant,
    iban: str,
    bic: str,
    now: datetime,
    actor: AbstractBaseUser | None = None,
) -> Merchant:
    """Set where payouts go: a valid IBAN (stored compact) and an optional BIC.

    A change of bank details is recorded (with the IBAN's last four characters only): it is
    the first thing an attacker with a stolen login would change.
    """
    with transaction.atomic():
        locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
        _payout_details_set(locked, iban=iban, bic=bic, now=now, actor=actor)
    return locked


def _payout_details_set(
    locked: Merchant, *, iban: str, bic: str, now: datetime, actor: AbstractBaseUser | None
) -> None:
    """On a merchant row locked by the caller: the new bank details, recorded if changed."""
    iban = compact_iban(iban) if iban.strip() else ""
    bic = compact_bic(bic) if bic.strip() else ""
    if (locked.payout_iban, locked.payout_bic) == (iban, bic):
        return
    locked.payout_iban, locked.payout_bic = iban, bic
    locked.save(update_fields=["payout_iban", "payout_bic"])
    _config_changed()
    MerchantEvent.objects.create(
        merchant=locked,
        kind="payout_details_changed",
        actor=actor,
        detail=f"IBAN …{iban[-4:]}" if iban else "IBAN removed",
        created_at=now,
    )


# --- staff -----------------------------------------------------------------------------


def user_create(*, email: str, password: str, first_name: str = "", last_name: str = ""):
    """A dashboard login; the email is the username."""
    user_model = get_user_model()
    email = user_model.objects.normalize_email(email).lower()
    if user_model.objects.filter(username__iexact=email).exists():
        raise EmailAlreadyRegistered()
    try:
        with transaction.atomic():
            return user_model.objects.create_user(
                username=email,
                email=email,
                password=password,
                first_name=first_name,
                last_name=last_name,
            )
    except IntegrityError as exc:  # the same email signed up at the same moment
        raise EmailAlreadyRegistered() from exc


def membership_add(*, merchant: Merchant, user: Any, role: str, now: datetime) -> Membership:
    membership, _created = Membership.objects.update_or_create(
        user=user,
        merchant=merchant,
        defaults={"role": role},
        create_defaults={"role": role, "created_at": now},
    )
    return membership


class StaffNotAllowed(DomainError):
    code = "staff_not_allowed"
    http_status = 403
    default_message = _("You are not allowed to do this.")


class StaffAlreadyMember(DomainError):
    code = "staff_already_member"
    http_status = 409
    default_message = _("This person is already a member of your team.")


class StaffLastOwner(DomainError):
    code = "staff_last_owner"
    http_status = 409
    default_message = _("The account needs at least one owner: make someone else owner first.")


class StaffMemberGone(DomainError):
    code = "staff_member_gone"
    http_status = 404
    default_message = _("This person is no longer a member of your team.")


class StaffInvitationNotPending(DomainError):
    code = "staff_invitation_not_pending"
    http_status = 409
    default_message = _("This person has already chosen a password.")


# The roles each role may give (invite with, or change a member to).
ROLES_GRANTABLE_BY: dict[str, set[str]] = {
    Membership.Role.OWNER: {Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.STAFF},
    Membership.Role.ADMIN: {Membership.Role.STAFF},
    Membership.Role.STAFF: set(),
}


@dataclass(frozen=True)
class StaffInvitation:
    membership: Membership
    user_created: bool  # a new login, with no password until its owner sets one


def _staff_lock(merchant: Merchant, actor: Membership) -> tuple[Merchant, Membership]:
    """Lock the merchant's row (staff changes of one merchant run one at a time, so two of
    them cannot both remove "one of two owners") and re-read the actor's role under it."""
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    current = Membership.objects.filter(pk=actor.pk, merchant=locked).first()
    if current is None or not current.can_manage_keys:
        raise StaffNotAllowed()
    return locked, current


def _member_locked(merchant: Merchant, member: Membership) -> Membership:
    current = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(pk=member.pk, merchant=merchant)
        .first()
    )
    if current is None:
        raise StaffMemberGone()
    return current


def _owners_count(merchant: Merchant) -> int:
    return Membership.objects.filter(merchant=merchant, role=Membership.Role.OWNER).count()


def staff_may_manage(*, actor: Membership, member: Membership) -> bool:
    """Owners manage everyone; admins manage staff members and themselves."""
    return actor.role == Membership.Role.OWNER or (
        actor.role == Membership.Role.ADMIN
        and (member.role == Membership.Role.STAFF or member.pk == actor.pk)
    )


def _user_for_invitation(email: str) -> tuple[Any, bool]:
    """The login with this email, or a new one without a usable password."""
    user_model = get_user_model()
    existing = user_model.objects.filter(username__iexact=email).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return user_model.objects.create_user(username=email, email=email), True
    except IntegrityError:  # the same email created at the same moment elsewhere
        return user_model.objects.get(username__iexact=email), False


def _invitation_email_queue(
    membership: Membership, *, inviter: Any, language: str, now: datetime
) -> None:
    """Tell the invited person; a login without a password gets a link to choose one
    (Django's password-reset token: valid PASSWORD_RESET_TIMEOUT, and only until the
    password is set)."""
    user = membership.user
    context: dict[str, Any] = {
        "merchant_name": membership.merchant.legal_name,
        "inviter": inviter.get_full_name() or inviter.email or inviter.get_username(),
        "role": membership.role,
        "login_url": f"{settings.PUBLIC_BASE_URL}{reverse('login')}",
        "set_password_url": "",
    }
    if not user.has_usable_password():
        path = reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context["set_password_url"] = f"{settings.PUBLIC_BASE_URL}{path}"
    with translation.override(language):
        subject = _("You are invited to the Tranche dashboard of %(merchant)s") % {
            "merchant": membership.merchant.legal_name
        }
    email_queue(
        key=f"membership:{membership.pk}:invitation:{now.isoformat()}",
        to=user.email,
        subject=subject,
        template="merchants/emails/staff_invited",
        context=context,
        language=language,
        now=now,
    )


@transaction.atomic
def staff_invite(
    *,
    merchant: Merchant,
    email: str,
    role: str,
    actor: Membership,
    now: datetime,
    language: str = settings.LANGUAGE_CODE,
) -> StaffInvitation:
    """Give someone access to the merchant's dashboard with ``role`` (admin or staff; only
    an owner makes admins): a new login without a password when the email is new, and an
    email (sent after commit) with a link to choose a password, or to log in."""
    locked, actor = _staff_lock(merchant, actor)
    if role not in {Membership.Role.ADMIN, Membership.Role.STAFF}:
        raise StaffNotAllowed(_("Invite an administrator or a staff member."))
    if role not in ROLES_GRANTABLE_BY[actor.role]:
        raise StaffNotAllowed(_("Only an owner can make administrators."))
    email = get_user_model().objects.normalize_email(email).strip().lower()
    user, created = _user_for_invitation(email)
    if Membership.objects.filter(merchant=locked, user=user).exists():
        raise StaffAlreadyMember()
    membership = Membership.objects.create(user=user, merchant=locked, role=role, created_at=now)
    MerchantEvent.objects.create(
        merchant=locked,
        kind="staff_invited",
        actor=actor.user,
        detail=f"{email} ({role})"[:200],
        created_at=now,
    )
    _invitation_email_queue(membership, inviter=actor.user, language=language, now=now)
    return StaffInvitation(membership=membership, user_created=created)


@transaction.atomic
def staff_invitation_resend(
    *,
    member: Membership,
    actor: Membership,
    now: datetime,
    language: str = settings.LANGUAGE_CODE,
) -> Membership:
    """Send the invitation again (a new link) to a member who has not chosen a password."""
    locked, actor = _staff_lock(member.merchant, actor)
    member = _member_locked(locked, member)
    if not staff_may_manage(actor=actor, member=member):
        raise StaffNotAllowed()
    if member.user.has_usable_password():
        raise StaffInvitationNotPending()
    MerchantEvent.objects.create(
        merchant=locked,
        kind="staff_invitation_resent",
        actor=actor.user,
        detail=member.user.email[:200],
        created_at=now,
    )
    _invitation_email_queue(member, inviter=actor.user, language=language, now=now)
    return member


@transaction.atomic
def staff_role_change(
    *, member: Membership, role: str, actor: Membership, now: datetime
) -> Membership:
    """Give a member another role. Owners change anyone's role (to owner, admin or staff);
    admins cannot change roles (they could only give the staff role to staff). The last
    owner keeps the owner role."""
    locked, actor = _staff_lock(member.merchant, actor)
    member = _member_locked(locked, member)
    if role not in Membership.Role.values:
        raise StaffNotAllowed(_("Choose owner, administrator or staff."))
    if (
        not staff_may_manage(actor=actor, member=member)
        or role not in ROLES_GRANTABLE_BY[actor.role]
    ):
        raise StaffNotAllowed()
    if member.role == role:
        return member  # asked twice (a form sent again): already done
    if member.role == Membership.Role.OWNER and _owners_count(locked) == 1:
        raise StaffLastOwner()
    previous = member.role
    member.role = role
    member.save(update_fields=["role"])
    MerchantEvent.objects.create(
        merchant=locked,
        kind="staff_role_changed",
        actor=actor.user,
        detail=f"{member.user.email}: {previous} -> {role}"[:200],
        created_at=now,
    )
    return member


@transaction.atomic
def staff_remove(*, member: Membership, actor: Membership, now: datetime) -> None:
    """Take a member's access to this merchant away (their login stays: it may belong to
    another merchant's team). Owners remove anyone, admins remove staff members and
    themselves; the last owner cannot be removed."""
    locked, actor = _staff_lock(member.merchant, actor)
    member = _member_locked(locked, member)
    if not staff_may_manage(actor=actor, member=member):
        raise StaffNotAllowed()
    if member.role == Membership.Role.OWNER and _owners_count(locked) == 1:
        raise StaffLastOwner()
    email = member.user.email
    member.delete()
    MerchantEvent.objects.create(
        merchant=locked,
        kind="staff_removed",
        actor=actor.user,
        detail=email[:200],
        created_at=now,
    )


# --- API keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A key just made; `secret` exists only here, to be shown once and then forgotten."""

    key: APIKey
    secret: str


@transaction.atomic
def api_key_create(
    *,
    merchant: Merchant,
    livemode: bool,
    now: datetime,
    created_by: AbstractBaseUser | None = None,
) -> IssuedKey:
    """A new secret key; the plaintext is returned once and stored only sealed (for signing
    the merchant's IPNs), never in the clear."""
    secret = generate_secret(livemode=livemode)
    key = APIKey.objects.create(
        merchant=merchant,
        livemode=livemode,
        secret_hash=hash_secret(secret),
        display_prefix=secret[:DISPLAY_PREFIX_LENGTH],
        secret_encrypted=seal(secret),
        created_at=now,
        created_by=created_by,
    )
    MerchantEvent.objects.create(
        merchant=merchant,
        kind="api_key_created",
        actor=created_by,
        detail=key.display_prefix,
        created_at=now,
    )
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def api_key_rotate(
    *, key: APIKey, now: datetime, actor: AbstractBaseUser | None = None
) -> IssuedKey:
    """Replace a key; the old one keeps working for API_KEY_ROTATION_GRACE_HOURS."""
    old = APIKey.objects.select_for_update().get(pk=key.pk)
    if not old.is_usable(now) or old.expires_at is not None:
        raise KeyNotActive("Only an active key can be rotated.")
    issued = api_key_create(merchant=old.merchant, livemode=old.livemode, now=now, created_by=actor)
    old.expires_at = now + timedelta(hours=settings.API_KEY_ROTATION_GRACE_HOURS)
    old.replaced_by = issued.key
    old.save(update_fields=["expires_at", "replaced_by"])
    _config_changed()
    MerchantEvent.objects.create(
        merchant=old.merchant,
        kind="api_key_rotated",
        actor=actor,
        detail=f"{old.display_prefix} -> {issued.key.display_prefix}",
        created_at=now,
    )
    return issued


@transaction.atomic
def api_key_revoke(*, key: APIKey, now: datetime, actor: AbstractBaseUser | None = None) -> APIKey:
    """Stop a key at once (also a rotated key still in its grace period)."""
    locked = APIKey.objects.select_for_update().get(pk=key.pk)
    if not locked.is_usable(now):
        raise KeyNotActive()
    locked.revoked_at = now
    locked.save(update_fields=["revoked_at"])
    _config_changed()
    MerchantEvent.objects.create(
        merchant=locked.merchant,
        kind="api_key_revoked",
        actor=actor,
        detail=locked.display_prefix,
        created_at=now,
    )
    return locked


def api_key_touch(*, key: APIKey, now: datetime) -> None:
    """Record use, at most once a minute per key so the hot path rarely writes."""
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


# --- fee plans -------------------------------------------------------------------------


@transaction.atomic
def fee_plans_replace(*, merchant: Merchant, specs: list[dict[str, Any]]) -> list[FeePlan]:
    """Set a merchant's fee plans to exactly `specs` (validated by parse_fee_plan_specs)."""
    merchant.fee_plans.all().delete()
    return FeePlan.objects.bulk_create(FeePlan(merchant=merchant, **spec) for spec in specs)


def fee_plans_install_defaults(*, merchant: Merchant) -> list[FeePlan]:
    return fee_plans_replace(merchant=merchant, specs=load_fee_plan_specs(DEFAULT_FEE_PLANS_FILE))
