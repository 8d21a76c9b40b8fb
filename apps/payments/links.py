"""Absolute links to Tranche's customer pages, as emails, SMS and the API give them."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.common.errors import DomainError


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


# Every email about a plan links into the customer portal with a signed link: the payment
# and the page to open ("" the plan, "card", "pay", "receipts"). Opening it signs the plan's
# customer in (they have no password); it expires, and a tampered one is refused.
PORTAL_LINK_SALT = "tranche.portal.link"
PORTAL_LINK_SECTIONS = ("", "card", "pay", "receipts")
# The links of the plan page before the portal (``/plan/<id>?t=``), still in old emails.
PLAN_SALT = "tranche.plan"


class LinkInvalid(DomainError):
    """Not a link we signed (tampered, truncated, or made up)."""

    code = "portal_link_invalid"
    http_status = 400
    default_message = _("This link is not valid. Please sign in with a code instead.")


class LinkExpired(DomainError):
    """A link we signed, past its lifetime: ``payment_id`` and ``section`` are what it
    named (a new link to them may be sent to the customer's email on file)."""

    code = "portal_link_expired"
    http_status = 410
    default_message = _("This link has expired.")

    def __init__(self, *, payment_id: str, section: str):
        super().__init__(payment_id=payment_id, section=section)
        self.payment_id = payment_id
        self.section = section


def _link_max_age() -> int:
    return settings.PORTAL_LINK_MAX_AGE_DAYS * 24 * 3600


@functools.cache
def _link_path_prefix() -> str:
    """``/portal/link/``: reversed once (``reverse`` costs more than the signature)."""
    marker = "0"
    return reverse("portal:link", args=[marker]).removesuffix(marker)


def plan_url(payment_public_id: str, *, section: str = "") -> str:
    """The signed portal link to a plan's page (``section`` ""), its change of card
    ("card"), paying early ("pay") or its receipts ("receipts"), valid
    ``PORTAL_LINK_MAX_AGE_DAYS``."""
    if section not in PORTAL_LINK_SECTIONS:
        raise ValueError(f"unknown portal section {section!r}")
    token = signing.dumps([payment_public_id, section], salt=PORTAL_LINK_SALT, compress=True)
    return absolute(_link_path_prefix() + token)


def portal_link_read(token: str) -> tuple[str, str]:
    """The (payment public id, section) a portal link names. Raises ``LinkExpired`` for a
    link we signed that is too old, ``LinkInvalid`` for anything else we did not sign."""
    try:
        value = signing.loads(token, salt=PORTAL_LINK_SALT, max_age=_link_max_age())
    except signing.SignatureExpired:
        payment_id, section = _link_payload(
            signing.loads(token, salt=PORTAL_LINK_SALT)  # authentic, only too old
        )
        raise LinkExpired(payment_id=payment_id, section=section) from None
    except (signing.BadSignature, ValueError):  # zlib or JSON garbage behind a signature
        raise LinkInvalid() from None
    return _link_payload(value)


def _link_payload(value: Any) -> tuple[str, str]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, str) for part in value)
        or value[1] not in PORTAL_LINK_SECTIONS
    ):
        raise LinkInvalid()
    return value[0], value[1]


def legacy_plan_link_read(payment_public_id: str, token: str) -> str:
    """The payment id of an old ``/plan/<id>?t=<token>`` link, held to the portal links'
    lifetime (it now opens a signed-in session, not only a read-only page). Raises
    ``LinkExpired`` or ``LinkInvalid`` as ``portal_link_read``."""
    try:
        signed = signing.loads(token, salt=PLAN_SALT, max_age=_link_max_age())
    except signing.SignatureExpired:
        if signing.loads(token, salt=PLAN_SALT) != payment_public_id:
            raise LinkInvalid() from None
        raise LinkExpired(payment_id=payment_public_id, section="") from None
    except (signing.BadSignature, ValueError):
        raise LinkInvalid() from None
    if signed != payment_public_id:
        raise LinkInvalid()
    return payment_public_id
