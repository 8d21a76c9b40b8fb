"""Absolute links to Tranche's customer pages, as emails, SMS and the API give them."""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse


def absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def checkout_url(payment_public_id: str) -> str:
    """The hosted payment page: a payment's ``url``."""
    return absolute(reverse("payments:checkout", args=[payment_public_id]))


def with_pid(url: str, payment_public_id: str) -> str:
    """``url`` with ``pid=<payment id>`` added to its query, keeping what is there
    (plugins' URLs often have a query already); empty stays empty."""
    if not url:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pid"]
    query.append(("pid", payment_public_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


# The explanation of a credit decision speaks of the customer's history with Tranche (at
# every merchant): it opens on the device that paid, or from a signed link in our emails,
# never from the payment URL alone (which the merchant knows).
EXPLANATION_SALT = "tranche.checkout.explanation"
EXPLANATION_LINK_MAX_AGE = 60 * 24 * 3600


def explanation_url(payment_public_id: str) -> str:
    path = reverse("payments:checkout-explanation", args=[payment_public_id])
    token = signing.dumps(payment_public_id, salt=EXPLANATION_SALT)
    return absolute(f"{path}?{urlencode({'t': token})}")


def explanation_token_valid(payment_public_id: str, token: str) -> bool:
    try:
        signed = signing.loads(token, salt=EXPLANATION_SALT, max_age=EXPLANATION_LINK_MAX_AGE)
    except signing.BadSignature:
        return False
    return signed == payment_public_id


# The customer's page of a plan (its schedule and receipts), opened from every email about
# it: a signed link, since the customer has no password (the portal adds a sign-in by code).
PLAN_SALT = "tranche.plan"
PLAN_LINK_MAX_AGE = 400 * 24 * 3600  # a 12-month plan's last email stays valid


@functools.cache
def _plan_path_prefix() -> str:
    """``/plan/``: reversed once (``reverse`` costs more than the signature), the id added."""
    marker = "0"
    return reverse("schedules:plan", args=[marker]).removesuffix(marker)


def plan_url(payment_public_id: str, *, section: str = "") -> str:
    path = _plan_path_prefix() + quote(payment_public_id, safe="")
    token = signing.dumps(payment_public_id, salt=PLAN_SALT, compress=False)
    anchor = f"#{section}" if section else ""
    return absolute(f"{path}?{urlencode({'t': token})}{anchor}")


def plan_token_valid(payment_public_id: str, token: str) -> bool:
    try:
        signed = signing.loads(token, salt=PLAN_SALT, max_age=PLAN_LINK_MAX_AGE)
    except signing.BadSignature:
        return False
    return signed == payment_public_id
