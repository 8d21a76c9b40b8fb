"""Merchant use cases: registration, activation, staff, API keys and fee plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from apps.common.config_cache import config_cache
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
) -> Merchant:
    """Set the merchant's payment defaults; records which of them changed."""
    values = {
        "return_url": return_url,
        "customer_cancel_url": customer_cancel_url,
        "ipn_callback_url": ipn_callback_url,
        "excluded_categories": excluded_categories,
        "authorisation_policy": authorisation_policy,
    }
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
    iban = compact_iban(iban) if iban.strip() else ""
    bic = compact_bic(bic) if bic.strip() else ""
    with transaction.atomic():
        locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
        if (locked.payout_iban, locked.payout_bic) == (iban, bic):
            return locked
        locked.payout_iban, locked.payout_bic = iban, bic
        locked.save(update_fields=["payout_iban", "payout_bic"])
        MerchantEvent.objects.create(
            merchant=locked,
            kind="payout_details_changed",
            actor=actor,
            detail=f"IBAN …{iban[-4:]}" if iban else "IBAN removed",
            created_at=now,
        )
    return locked


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
    membership, _ = Membership.objects.update_or_create(
        user=user,
        merchant=merchant,
        defaults={"role": role},
        create_defaults={"role": role, "created_at": now},
    )
    return membership


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
