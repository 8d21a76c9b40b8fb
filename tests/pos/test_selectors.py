"""Reads of sessions and terminals never cross a merchant or a mode."""

import pytest
from django.utils import timezone

from apps.common.errors import NotFound
from apps.pos import selectors, services
from tests.pos.helpers import started, terminal_for

pytestmark = pytest.mark.django_db


def test_a_session_is_read_by_its_merchant_in_its_mode_only(shop, other_shop):
    session = started(shop)
    now = timezone.now()
    bare_id = session.public_id.removeprefix("pos_session_")

    assert (
        selectors.session_for(merchant=shop.merchant, livemode=False, session_id=bare_id, now=now)
        == session
    )
    for merchant, livemode in ((other_shop.merchant, False), (shop.merchant, True)):
        with pytest.raises(NotFound):
            selectors.session_for(
                merchant=merchant, livemode=livemode, session_id=session.public_id, now=now
            )


def test_working_terminals_come_first_then_the_newest(shop, other_shop):
    first, _ = terminal_for(shop, name="Caisse 1")
    terminal_for(shop, name="Caisse 2")
    third, _ = terminal_for(shop, name="Caisse 3")
    terminal_for(other_shop, name="Ailleurs")
    terminal_for(shop, livemode=True, name="En production")
    services.terminal_revoke(terminal=third, now=timezone.now())

    names = [t.name for t in selectors.terminals(merchant=shop.merchant, livemode=False)]

    assert names == ["Caisse 2", "Caisse 1", "Caisse 3"]
    with pytest.raises(NotFound):
        selectors.terminal_for(
            merchant=other_shop.merchant, livemode=False, terminal_id=first.public_id
        )
