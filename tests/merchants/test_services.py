import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from apps.common.errors import InvalidTransition
from apps.merchants import services
from apps.merchants.models import APIKey, FeePlan, Merchant, MerchantEvent
from apps.merchants.selectors import api_key_for_secret
from tests.factories import MerchantFactory
from tests.support import all_database_text

pytestmark = pytest.mark.django_db


def test_a_new_merchant_is_pending_and_has_no_fee_plans():
    merchant = services.merchant_create(
        legal_name="Chez Paul", country="fr", contact_email="p@x.example", now=timezone.now()
    )

    assert merchant.status == Merchant.Status.PENDING
    assert merchant.country == "FR"
    assert merchant.public_id.startswith("merchant_")
    assert not merchant.fee_plans.exists()


def test_activation_installs_the_default_fee_plans_once():
    merchant = MerchantFactory()
    now = timezone.now()

    services.merchant_activate(merchant=merchant, now=now)
    services.merchant_suspend(merchant=merchant, now=now)
    FeePlan.objects.filter(merchant=merchant, installments_count=3).update(allowed=False)
    services.merchant_activate(merchant=merchant, now=now)

    assert merchant.fee_plans.count() == 21
    assert not merchant.fee_plans.get(kind="general", installments_count=3).allowed


def test_each_status_change_is_recorded():
    merchant = MerchantFactory()

    services.merchant_activate(merchant=merchant, now=timezone.now())

    event = MerchantEvent.objects.get(merchant=merchant, kind="status_changed")
    assert (event.from_status, event.to_status) == ("pending", "active")


def test_a_merchant_cannot_be_activated_twice():
    merchant = MerchantFactory()
    services.merchant_activate(merchant=merchant, now=timezone.now())

    with pytest.raises(InvalidTransition):
        services.merchant_activate(merchant=merchant, now=timezone.now())


def test_a_key_is_shown_once_and_stored_only_as_a_hash():
    merchant = MerchantFactory()

    issued = services.api_key_create(merchant=merchant, livemode=True, now=timezone.now())

    assert issued.secret.startswith("sk_live_")
    assert len(issued.secret) - len("sk_live_") >= 24
    assert issued.key.display_prefix == issued.secret[:12]
    assert issued.secret not in all_database_text()
    assert issued.secret[12:] not in all_database_text()


def test_keys_do_not_repeat():
    merchant = MerchantFactory()
    now = timezone.now()

    secrets = {
        services.api_key_create(merchant=merchant, livemode=False, now=now).secret
        for _ in range(50)
    }

    assert len(secrets) == 50


def test_the_key_prefix_decides_the_mode():
    merchant = MerchantFactory()
    now = timezone.now()
    test = services.api_key_create(merchant=merchant, livemode=False, now=now)
    live = services.api_key_create(merchant=merchant, livemode=True, now=now)

    assert api_key_for_secret(test.secret, now=now).livemode is False
    assert api_key_for_secret(live.secret, now=now).livemode is True


def test_a_rotated_key_cannot_be_rotated_again_but_can_be_revoked():
    merchant = MerchantFactory()
    now = timezone.now()
    issued = services.api_key_create(merchant=merchant, livemode=False, now=now)
    key = issued.key
    services.api_key_rotate(key=key, now=now)

    with pytest.raises(services.KeyNotActive):
        services.api_key_rotate(key=key, now=now)
    assert api_key_for_secret(issued.secret, now=now) is not None  # still in its grace period
    services.api_key_revoke(key=key, now=now)

    assert api_key_for_secret(issued.secret, now=now) is None
    assert APIKey.objects.get(pk=key.pk).state(now) == "revoked"


def test_revoking_twice_is_refused():
    merchant = MerchantFactory()
    now = timezone.now()
    key = services.api_key_create(merchant=merchant, livemode=False, now=now).key
    services.api_key_revoke(key=key, now=now)

    with pytest.raises(services.KeyNotActive):
        services.api_key_revoke(key=key, now=now)


def test_last_use_is_written_at_most_once_a_minute(time_machine):
    merchant = MerchantFactory()
    time_machine.move_to("2026-11-22 10:00:00+00:00", tick=False)
    key = services.api_key_create(merchant=merchant, livemode=False, now=timezone.now()).key

    services.api_key_touch(key=key, now=timezone.now())
    first = APIKey.objects.get(pk=key.pk).last_used_at
    time_machine.move_to("2026-11-22 10:00:30+00:00", tick=False)
    services.api_key_touch(key=key, now=timezone.now())

    assert APIKey.objects.get(pk=key.pk).last_used_at == first


def test_registering_twice_with_one_email_is_refused():
    fields = dict(
        legal_name="A",
        country="FR",
        website="",
        store_only=True,
        password="x-very-long-password",
        first_name="A",
        last_name="B",
        now=timezone.now(),
    )
    services.merchant_register(email="Owner@Shop.example", **fields)

    with pytest.raises(services.EmailAlreadyRegistered):
        services.merchant_register(email="owner@shop.example", **fields)
    assert Merchant.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_and_revocations_of_one_key_act_once():
    merchant = MerchantFactory()
    key = services.api_key_create(merchant=merchant, livemode=False, now=timezone.now()).key
    start = threading.Barrier(10)

    def act(index):
        start.wait()
        try:
            if index % 2:
                services.api_key_rotate(key=key, now=timezone.now())
                return "rotated"
            services.api_key_revoke(key=key, now=timezone.now())
            return "revoked"
        except services.KeyNotActive:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = sorted(pool.map(act, range(10)))

    rotations = APIKey.objects.filter(merchant=merchant).exclude(pk=key.pk).count()
    assert outcomes.count("rotated") == rotations <= 1
    assert outcomes.count("revoked") <= 1
    assert outcomes.count("refused") == 10 - outcomes.count("rotated") - outcomes.count("revoked")
    assert APIKey.objects.get(pk=key.pk).state(timezone.now()) in {"revoked", "expiring"}
