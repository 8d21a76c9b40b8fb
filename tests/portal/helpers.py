"""Portal test helpers: plans for a given customer, and a signed-in test client."""

from __future__ import annotations

from datetime import datetime

from apps.payments.models import Customer, Payment
from apps.schedules.portal.session import CUSTOMER_KEY, SEEN_AT_KEY, SIGNED_IN_AT_KEY
from tests.schedules.builders import accepted

CAMILLE = {
    "email": "camille.martin@example.com",
    "first_name": "Camille",
    "last_name": "Martin",
    "phone": "+33612345678",
}
DOMINIQUE = {
    "email": "dominique.durand@example.com",
    "first_name": "Dominique",
    "last_name": "Durand",
    "phone": "+33698765432",
}


def plan_for(shop, person: dict, *, when: datetime, **fields) -> Payment:
    """An accepted plan (test mode) of ``shop`` for ``person`` (CAMILLE, DOMINIQUE...)."""
    return accepted(shop, when=when, customer=dict(person), **fields)


def sign_in(client, customer: Customer, *, when: datetime) -> None:
    """Put ``customer`` in the test client's session, as a verified code would."""
    session = client.session
    session[CUSTOMER_KEY] = customer.pk
    session[SIGNED_IN_AT_KEY] = when.isoformat()
    session[SEEN_AT_KEY] = when.isoformat()
    session.save()


def browser_sign_in(page, base_url: str, customer: Customer, *, when: datetime) -> None:
    """Give the browser a portal session for ``customer`` (for tests of what comes after
    signing in; the sign-in itself has its own browser test)."""
    from importlib import import_module
    from urllib.parse import urlsplit

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[CUSTOMER_KEY] = customer.pk
    store[SIGNED_IN_AT_KEY] = when.isoformat()
    store[SEEN_AT_KEY] = when.isoformat()
    store.save()
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": store.session_key,
                "domain": urlsplit(base_url).hostname,
                "path": "/",
            }
        ]
    )
