"""Log-in rate limit (django-axes), session expiry and CSRF on the dashboard's forms."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.merchants.models import APIKey, Membership
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
START = timezone.now().replace(microsecond=0)


def log_in(client, username, password, *, ip="127.0.0.1"):
    return client.post(
        reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        HTTP_ACCEPT_LANGUAGE="en",
    )


def fail_five_times(client, username, *, ip="127.0.0.1"):
    return [log_in(client, username, "wrong password", ip=ip) for _attempt in range(5)]


def locked_out(response) -> bool:
    return "registration/locked_out.html" in [template.name for template in response.templates]


# --- rate limit -----------------------------------------------------------------------


def test_a_right_password_logs_in(client, shop):
    response = log_in(client, shop.owner.email, PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("dashboard:home")


def test_after_five_wrong_passwords_even_the_right_one_is_refused(client, shop):
    attempts = fail_five_times(client, shop.owner.email)

    sixth = log_in(client, shop.owner.email, PASSWORD)

    assert [response.status_code for response in attempts[:4]] == [200] * 4
    assert attempts[4].status_code == 429  # the fifth failure already locks
    assert sixth.status_code == 429
    assert locked_out(sixth)
    assert "_auth_user_id" not in client.session
    text = sixth.content.decode()
    assert "Too many attempts" in text
    assert "Try again in 15 minutes" in text  # AXES_COOLOFF_TIME, in minutes
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


def test_the_lockout_page_speaks_french_by_default(client, shop):
    fail_five_times(client, shop.owner.email)

    sixth = client.post(reverse("login"), {"username": shop.owner.email, "password": PASSWORD})

    assert sixth.status_code == 429
    assert sixth["Content-Language"] == "fr"
    assert re.search(r"15\s", sixth.content.decode())


def test_the_lockout_page_shows_the_configured_cool_off(client, shop, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    fail_five_times(client, shop.owner.email)

    sixth = log_in(client, shop.owner.email, PASSWORD)

    assert "Try again in 1 minute," in sixth.content.decode()


def test_another_user_from_the_same_address_is_not_locked(client, shop, other_shop):
    fail_five_times(client, shop.owner.email)

    response = log_in(client, other_shop.owner.email, PASSWORD)

    assert response.status_code == 302


def test_the_same_user_from_another_address_is_not_locked(client, shop):
    fail_five_times(client, shop.owner.email, ip="203.0.113.7")

    response = log_in(client, shop.owner.email, PASSWORD, ip="198.51.100.9")

    assert response.status_code == 302


def test_the_lock_ends_after_the_cool_off(client, shop):
    with time_machine.travel(START, tick=False):
        fail_five_times(client, shop.owner.email)
    with time_machine.travel(START + timedelta(minutes=15, seconds=1), tick=False):
        response = log_in(client, shop.owner.email, PASSWORD)

    assert response.status_code == 302


def test_an_attempt_during_the_lock_starts_the_cool_off_again(client, shop):
    """django-axes' AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT (on by default): who
    keeps trying stays locked out."""
    with time_machine.travel(START, tick=False):
        fail_five_times(client, shop.owner.email)
    with time_machine.travel(START + timedelta(minutes=14), tick=False):
        first = log_in(client, shop.owner.email, PASSWORD)
    with time_machine.travel(START + timedelta(minutes=28, seconds=59), tick=False):
        second = log_in(client, shop.owner.email, PASSWORD)  # locked since minute 14

    with time_machine.travel(START + timedelta(minutes=44), tick=False):
        response = log_in(client, shop.owner.email, PASSWORD)  # 15 minutes of quiet

    assert first.status_code == second.status_code == 429
    assert response.status_code == 302


def test_a_successful_log_in_resets_the_count(client, shop):
    for _attempt in range(4):
        log_in(client, shop.owner.email, "wrong password")
    assert log_in(client, shop.owner.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))

    later = [log_in(client, shop.owner.email, "wrong password") for _attempt in range(4)]
    response = log_in(client, shop.owner.email, PASSWORD)

    assert [attempt.status_code for attempt in later] == [200] * 4
    assert response.status_code == 302


def test_another_spelling_of_the_email_is_no_way_around_the_lock(client, shop):
    fail_five_times(client, shop.owner.email)

    response = log_in(client, shop.owner.email.upper(), PASSWORD)

    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session


# --- sessions -------------------------------------------------------------------------


def test_a_dashboard_session_ends_after_eight_hours(shop):
    client = Client()
    with time_machine.travel(START, tick=False):
        assert log_in(client, shop.owner.email, PASSWORD).status_code == 302
    with time_machine.travel(START + timedelta(hours=7, minutes=59), tick=False):
        before = client.get(reverse("merchants:settings"))

    with time_machine.travel(START + timedelta(hours=8, minutes=1), tick=False):
        after = client.get(reverse("merchants:settings"))

    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert before.status_code == 200
    assert after.status_code == 302
    assert after.url.startswith(reverse("login"))


def test_the_session_cookie_ends_with_the_browser_and_is_not_readable_by_scripts(client, shop):
    response = log_in(client, shop.owner.email, PASSWORD)

    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["max-age"] == ""  # a browser-session cookie
    assert cookie["samesite"] == "Lax"


# --- CSRF -----------------------------------------------------------------------------


def merchants_post_urls(shop) -> list[str]:
    key = APIKey.objects.filter(merchant=shop.merchant).first()
    clerk = MembershipFactory(merchant=shop.merchant, role=Membership.Role.STAFF)
    return [
        reverse("merchants:register"),
        reverse("merchants:settings"),
        reverse("merchants:api-keys"),
        reverse("merchants:api-key-rotate", args=[key.pk]),
        reverse("merchants:api-key-revoke", args=[key.pk]),
        reverse("merchants:staff"),
        reverse("merchants:staff-role", args=[clerk.pk]),
        reverse("merchants:staff-remove", args=[clerk.pk]),
        reverse("merchants:staff-resend", args=[clerk.pk]),
        reverse("dashboard:mode"),
        reverse("logout"),
    ]


def test_every_form_of_the_merchant_pages_refuses_a_post_without_csrf_token(shop):
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.owner)
    urls = merchants_post_urls(shop)

    statuses = {
        url: client.post(url, {"role": "admin", "mode": "test"}).status_code for url in urls
    }

    assert statuses == {url: 403 for url in urls}
    assert APIKey.objects.filter(merchant=shop.merchant, revoked_at__isnull=True).count() == 2
    assert Membership.objects.get(merchant=shop.merchant, role="staff")  # not removed
    assert "_auth_user_id" in client.session  # not logged out


def test_the_login_form_refuses_a_post_without_csrf_token(shop):
    client = Client(enforce_csrf_checks=True)

    response = log_in(client, shop.owner.email, PASSWORD)

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_the_same_post_with_the_pages_token_is_accepted(shop):
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.owner)
    page = client.get(reverse("merchants:staff"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]

    response = client.post(
        reverse("merchants:staff"),
        {"csrfmiddlewaretoken": token, "email": "new@shop.example", "role": "staff"},
    )

    assert response.status_code == 302
    assert Membership.objects.filter(user__email="new@shop.example").exists()
