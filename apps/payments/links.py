"""Absolute links to Tranche's customer pages, as emails, SMS and the API give them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
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
