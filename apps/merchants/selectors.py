"""Reads of merchant data for views, the API and other apps."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Case, F, Func, Prefetch, Q, QuerySet, Value, When

from apps.common.config_cache import config_cache
from apps.common.signing import UnsealError, unseal
from apps.merchants.keys import hash_secret, looks_like_secret
from apps.merchants.models import APIKey, FeePlan, Membership, Merchant


def api_key_for_secret(secret: str, *, now: datetime) -> APIKey | None:
    """The usable key with this secret, with its merchant, or None.

    One indexed query, or none when this process's credential cache holds the key.
    """
    if not looks_like_secret(secret):
        return None
    secret_hash = hash_secret(secret)
    key = config_cache.get(("api_key", secret_hash), lambda: _key_with_merchant(secret_hash))
    if key is None or not key.is_usable(now):
        return None
    return key


def _key_with_merchant(secret_hash: str) -> APIKey | None:
    try:
        return APIKey.objects.select_related("merchant").get(secret_hash=secret_hash)
    except APIKey.DoesNotExist:
        return None


def api_key_signing_secret(*, merchant: Merchant, livemode: bool, now: datetime) -> str | None:
    """The plain secret of the merchant's newest usable key of this mode, to sign its IPNs.

    None when the merchant has no usable key of that mode, or when that key predates sealed
    copies (or can no longer be unsealed): the merchant must rotate its key. The secret is
    only ever returned, never logged or cached.
    """
    keys = APIKey.objects.filter(merchant=merchant, livemode=livemode, revoked_at__isnull=True)
    # Newest by insertion: a rotation's key is always inserted after the key it replaces.
    key = keys.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).order_by("-pk").first()
    if key is None or not key.secret_encrypted:
        return None
    try:
        return unseal(key.secret_encrypted)
    except UnsealError:
        return None


def membership_for_user(user) -> Membership | None:
    """The merchant a dashboard user works for (the oldest membership)."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("merchant")
        .filter(user=user)
        .order_by("created_at", "pk")
        .first()
    )


def api_keys_list(*, merchant: Merchant) -> QuerySet[APIKey]:
    return merchant.api_keys.order_by("livemode", "-created_at")


def api_key_get(*, merchant: Merchant, key_id: int) -> APIKey:
    """A key of this merchant; another merchant's key id raises DoesNotExist."""
    return merchant.api_keys.get(pk=key_id)


def fee_plans_list(
    *,
    merchant: Merchant,
    kinds: Iterable[str] | None = None,
    installments_counts: Iterable[int] | None = None,
    include_deferred: bool = True,
) -> list[FeePlan]:
    plans = FeePlan.objects.filter(merchant=merchant)
    if kinds is not None:
        plans = plans.filter(kind__in=list(kinds))
    if installments_counts is not None:
        plans = plans.filter(installments_count__in=list(installments_counts))
    if not include_deferred:
        plans = plans.filter(deferred_days=0, deferred_months=0)
    plans = list(plans)
    for plan in plans:
        plan.merchant = merchant  # the caller's instance: no query per plan for its fields
    return plans


def merchant_first_active() -> Merchant | None:
    """The oldest active merchant (the demo pages' default shop on a local install)."""
    return Merchant.objects.filter(status=Merchant.Status.ACTIVE).order_by("created_at").first()


def merchant_by_public_id(public_id: str) -> Merchant | None:
    """The merchant with this public id (the widget's credential), from the config cache."""
    return config_cache.get(
        ("merchant", public_id), lambda: Merchant.objects.filter(public_id=public_id).first()
    )


def staff_list(*, merchant: Merchant) -> QuerySet[Membership]:
    """The merchant's team: owners first, then administrators, then staff; oldest first."""
    rank = Case(
        When(role=Membership.Role.OWNER, then=Value(0)),
        When(role=Membership.Role.ADMIN, then=Value(1)),
        default=Value(2),
    )
    return (
        Membership.objects.filter(merchant=merchant)
        .select_related("user", "merchant")
        .order_by(rank, "created_at", "pk")
    )


def staff_member_get(*, merchant: Merchant, membership_id: int) -> Membership:
    """A member of this merchant's team; another merchant's member raises DoesNotExist."""
    return Membership.objects.select_related("user", "merchant").get(
        merchant=merchant, pk=membership_id
    )


# --- the partner directory (the portal's public page) -----------------------------------

# Tranche's own accounts, never shown to customers whatever their flags say: the card
# programme's merchant (apps.issuing.services.programme) books every card purchase.
UNLISTED_PUBLIC_IDS = frozenset({"merchant_tranche_card"})
DIRECTORY_QUERY_MAX_LENGTH = 100
# Accented letters folded by the database to match a search without them ("Eleve" finds
# "Élève"): the unaccent extension is not installed, translate() is built in. Both cases,
# since lower() leaves non-ASCII letters alone under the C collation.
_ACCENTED = "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝŸ"
_PLAIN = "aaaaaaceeeeiiiinooooouuuuyyAAAAAACEEEEIIIINOOOOOUUUUYY"
_LIGATURES = (("œ", "oe"), ("Œ", "OE"), ("æ", "ae"), ("Æ", "AE"))


def search_fold(text: str) -> str:
    """``text`` without accents or ligatures, lower-cased: how a directory search compares
    names (the database folds ``legal_name`` the same way)."""
    for ligature, letters in _LIGATURES:
        text = text.replace(ligature, letters)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()


def _folded_name():
    expression = Func(F("legal_name"), Value(_ACCENTED), Value(_PLAIN), function="translate")
    for ligature, letters in _LIGATURES:
        expression = Func(expression, Value(ligature), Value(letters), function="replace")
    return expression


def directory_merchants(*, query: str = "", category: str = "") -> QuerySet[Merchant]:
    """The shops customers may browse: active, listed, never Tranche's own accounts; by
    name. ``query`` matches part of the name, whatever the case and accents; ``category``
    (one of ``Merchant.Category``) narrows to a category. Each merchant comes with
    ``directory_plans``: its allowed fee plans offered online or in store (one query for
    all merchants of a page)."""
    merchants = Merchant.objects.filter(
        status=Merchant.Status.ACTIVE, listed_in_directory=True
    ).exclude(public_id__in=UNLISTED_PUBLIC_IDS)
    if category:
        merchants = merchants.filter(category=category)
    folded = search_fold((query or "").strip()[:DIRECTORY_QUERY_MAX_LENGTH])
    if folded:
        merchants = merchants.alias(folded_name=_folded_name()).filter(
            folded_name__icontains=folded
        )
    plans = FeePlan.objects.filter(allowed=True).filter(
        Q(available_online=True) | Q(available_in_pos=True)
    )
    return (
        merchants.only("public_id", "legal_name", "website", "category", "store_only", "country")
        .prefetch_related(Prefetch("fee_plans", queryset=plans, to_attr="directory_plans"))
        .order_by("legal_name", "pk")
    )
