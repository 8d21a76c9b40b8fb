"""Operators' in-store pages: read-only lists of terminals and sessions, with filters and
a search by id or reference."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.pos import services
from apps.pos.models import PosSession, Terminal
from tests.pos.helpers import started, terminal_for

pytestmark = pytest.mark.django_db


def _listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_operators_list_and_search_sessions(admin_client, shop):
    terminal, _ = terminal_for(shop)
    on_terminal = started(shop, terminal=terminal)
    virtual = started(shop)
    PosSession.objects.filter(pk=virtual.pk).update(reference="CMD-77")
    url = reverse("admin:pos_possession_changelist")

    everything = _listed(admin_client.get(url))
    by_id = _listed(admin_client.get(url, {"q": on_terminal.public_id}))
    by_reference = _listed(admin_client.get(url, {"q": "CMD-77"}))
    virtual_only = _listed(admin_client.get(url, {"terminal__isempty": "1"}))
    link_sent = _listed(admin_client.get(url, {"state__exact": "link_sent"}))

    assert set(everything) == {on_terminal, virtual}
    assert by_id == [on_terminal]
    assert by_reference == [virtual]
    assert virtual_only == [virtual]
    assert set(link_sent) == {on_terminal, virtual}


def test_a_session_page_shows_its_facts_but_not_its_link_code(admin_client, shop):
    session = started(shop)

    page = admin_client.get(reverse("admin:pos_possession_change", args=[session.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert session.public_id in html
    assert session.link_code not in html


def test_operators_list_terminals_and_filter_the_revoked(admin_client, shop):
    active, _ = terminal_for(shop, name="Caisse A")
    revoked, _ = terminal_for(shop, name="Caisse B")
    services.terminal_revoke(terminal=revoked, now=timezone.now())
    url = reverse("admin:pos_terminal_changelist")

    assert set(_listed(admin_client.get(url))) == {active, revoked}
    assert _listed(admin_client.get(url, {"revoked": "yes"})) == [revoked]
    assert _listed(admin_client.get(url, {"revoked": "no"})) == [active]
    assert _listed(admin_client.get(url, {"q": active.public_id})) == [active]


def test_a_terminal_page_never_shows_the_secrets_hash(admin_client, shop):
    terminal, secret = terminal_for(shop)

    html = admin_client.get(reverse("admin:pos_terminal_change", args=[terminal.pk])).content
    html = html.decode()

    assert terminal.display_prefix in html
    assert terminal.secret_hash not in html and secret not in html


def test_terminals_and_sessions_cannot_be_changed_added_or_deleted(admin_client, shop):
    terminal, _ = terminal_for(shop)
    session = started(shop, terminal=terminal)

    changed = admin_client.post(
        reverse("admin:pos_terminal_change", args=[terminal.pk]), {"name": "Autre"}
    )
    added = admin_client.get(reverse("admin:pos_possession_add"))
    deleted = admin_client.post(
        reverse("admin:pos_possession_delete", args=[session.pk]), {"post": "yes"}
    )

    assert changed.status_code == 403
    assert added.status_code == 403
    assert deleted.status_code == 403
    assert Terminal.objects.get().name == "Caisse 1"
    assert PosSession.objects.filter(pk=session.pk).exists()
