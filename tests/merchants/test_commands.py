"""The operator's create_merchant and the demo merchant of `make run`."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from apps.merchants.models import Merchant
from apps.merchants.selectors import api_key_for_secret
from tests.support import all_database_text

pytestmark = pytest.mark.django_db


def create(*args) -> dict:
    out = StringIO()
    call_command("create_merchant", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_merchant_prints_one_json_object_with_working_credentials(client):
    result = create("--name", "Chez Léa", "--email", "lea@shop.example", "--country", "fr")

    merchant = Merchant.objects.get(public_id=result["merchant_id"])
    assert merchant.status == "pending"
    assert result["login"] == "lea@shop.example"
    assert api_key_for_secret(result["test_secret_key"], now=timezone.now()).livemode is False
    assert api_key_for_secret(result["live_secret_key"], now=timezone.now()).livemode is True
    # django-axes (the log-in rate limit) needs the request the credentials come with.
    login_request = RequestFactory().post("/accounts/login/")
    assert client.login(
        request=login_request, username="lea@shop.example", password=result["password"]
    )
    database = all_database_text()
    assert result["test_secret_key"][12:] not in database
    assert result["live_secret_key"][12:] not in database
    assert result["password"] not in database


def test_create_merchant_can_activate_with_the_default_plans():
    result = create("--name", "A", "--email", "a@shop.example", "--country", "FR", "--activate")

    assert result["state"] == "active"
    assert result["fee_plans"] == 21


def test_create_merchant_takes_fee_plans_from_a_file(tmp_path):
    path = tmp_path / "plans.json"
    path.write_text(json.dumps([{"installments_count": 3, "merchant_fee_variable": 333}]))

    result = create(
        "--name",
        "B",
        "--email",
        "b@shop.example",
        "--country",
        "BE",
        "--store-only",
        "--fee-plans",
        str(path),
        "--activate",
    )

    merchant = Merchant.objects.get(public_id=result["merchant_id"])
    assert merchant.store_only
    assert [(p.installments_count, p.merchant_fee_variable) for p in merchant.fee_plans.all()] == [
        (3, 333)
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--country", "France"], "must be one of"),
        (["--country", "US"], "must be one of"),
        (["--country", "FR", "--fee-plans", "/nonexistent.json"], "Cannot read fee plans"),
    ],
)
def test_create_merchant_explains_bad_input(args, words):
    with pytest.raises(CommandError, match=words):
        call_command("create_merchant", "--name", "C", "--email", "c@shop.example", *args)
    assert not Merchant.objects.exists()


def test_create_merchant_refuses_a_taken_email():
    create("--name", "D", "--email", "d@shop.example", "--country", "FR")

    with pytest.raises(CommandError, match="already exists"):
        call_command(
            "create_merchant", "--name", "E", "--email", "D@shop.example", "--country", "FR"
        )
    assert Merchant.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_create_merchant_runs_as_its_own_process():
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}"
    env = {**os.environ, "DATABASE_URL": url}

    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_merchant",
            "--name",
            "F",
            "--email",
            "f@shop.example",
            "--country",
            "FR",
            "--json",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    result = json.loads(done.stdout)
    assert Merchant.objects.filter(public_id=result["merchant_id"]).exists()


def test_demo_merchant_is_idempotent_and_prints_the_same_working_key(tmp_path, monkeypatch):
    from apps.merchants.management.commands import demo_merchant

    monkeypatch.setattr(demo_merchant, "CREDENTIALS_FILE", tmp_path / "demo.json")
    first, second = StringIO(), StringIO()

    call_command("demo_merchant", stdout=first)
    call_command("demo_merchant", stdout=second)

    assert Merchant.objects.filter(legal_name=demo_merchant.DEMO_NAME, status="active").count() == 1
    assert first.getvalue() == second.getvalue()
    secret = json.loads((tmp_path / "demo.json").read_text())["test_secret_key"]
    assert f"Test secret key: {secret}" in first.getvalue()
    assert api_key_for_secret(secret, now=timezone.now()) is not None
    assert oct((tmp_path / "demo.json").stat().st_mode)[-3:] == "600"
