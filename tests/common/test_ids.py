from apps.common import ids


def test_public_ids_have_a_prefix_and_34_base62_characters():
    value = ids.new_public_id("payment")

    assert value.startswith("payment_")
    assert ids.is_well_formed("payment", value)
    assert len(value) == len("payment_") + 34


def test_public_ids_do_not_repeat():
    assert len({ids.new_public_id("merchant") for _ in range(1000)}) == 1000


def test_ids_are_accepted_with_or_without_their_prefix():
    assert ids.with_prefix("payment", "abc") == "payment_abc"
    assert ids.with_prefix("payment", "payment_abc") == "payment_abc"


def test_malformed_ids_are_recognised():
    assert not ids.is_well_formed("payment", "payment_short")
    assert not ids.is_well_formed("payment", "refund_" + "a" * 34)
    assert not ids.is_well_formed("payment", "payment_" + "é" * 34)


def test_every_base62_character_appears_in_every_position():
    values = [ids.random_base62(34) for _ in range(3000)]

    for position in (0, 17, 33):
        assert {value[position] for value in values} == set(ids.ALPHABET)
