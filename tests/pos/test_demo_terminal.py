"""`make run`'s demo terminal: registered once, the same working secret printed each run."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.merchants.management.commands import demo_merchant
from apps.pos import services
from apps.pos.management.commands import demo_terminal

pytestmark = pytest.mark.django_db


def test_demo_terminal_is_idempotent_and_its_secret_works(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_merchant, "CREDENTIALS_FILE", tmp_path / "demo.json")
    monkeypatch.setattr(demo_terminal, "CREDENTIALS_FILE", tmp_path / "terminal.json")
    call_command("demo_merchant", stdout=io.StringIO())
    first, second = io.StringIO(), io.StringIO()
    call_command("demo_terminal", "--port", "8123", stdout=first)
    call_command("demo_terminal", "--port", "8123", stdout=second)

    secret = json.loads((tmp_path / "terminal.json").read_text())["secret"]
    assert first.getvalue() == second.getvalue()
    assert f"http://127.0.0.1:8123/pos/simulator/#secret={secret}" in first.getvalue()
    terminal = services.terminal_for_secret(secret)
    assert terminal is not None and not terminal.livemode and not terminal.is_revoked
    assert terminal.merchant.memberships.filter(user__username=demo_terminal.DEMO_EMAIL).exists()
    assert oct((tmp_path / "terminal.json").stat().st_mode)[-3:] == "600"


def test_a_revoked_demo_terminal_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_merchant, "CREDENTIALS_FILE", tmp_path / "demo.json")
    monkeypatch.setattr(demo_terminal, "CREDENTIALS_FILE", tmp_path / "terminal.json")
    call_command("demo_merchant", stdout=io.StringIO())
    call_command("demo_terminal", stdout=io.StringIO())
    old = services.terminal_for_secret(
        json.loads((tmp_path / "terminal.json").read_text())["secret"]
    )

    services.terminal_revoke(terminal=old, now=timezone.now())
    call_command("demo_terminal", stdout=io.StringIO())
    new_secret = json.loads((tmp_path / "terminal.json").read_text())["secret"]
    new = services.terminal_for_secret(new_secret)
    assert new.pk != old.pk and not new.is_revoked


def test_demo_terminal_needs_the_demo_merchant():
    with pytest.raises(CommandError, match="demo_merchant"):
        call_command("demo_terminal", stdout=io.StringIO())
