import pytest

from apps.verification.errors import InvalidPhone
from apps.verification.phones import phone_mask, phone_normalise


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0612345678", "FR", "+33612345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "FR", "+33612345678"),
        ("0033 6 12 34 56 78", "FR", "+33612345678"),
        ("  +33612345678  ", "FR", "+33612345678"),
        ("07 81 23 45 67", "FR", "+33781234567"),
        ("+32 470 12 34 56", "FR", "+32470123456"),
        ("0470 12 34 56", "BE", "+32470123456"),
        ("+49 1512 3456789", "FR", "+4915123456789"),
        ("+44 7911 123456", "FR", "+447911123456"),
        # The North American plan does not tell mobiles from landlines: accepted.
        ("+1 650 253 0000", "FR", "+16502530000"),
    ],
)
def test_usual_spellings_of_a_mobile_number_become_e164(raw, region, expected):
    assert phone_normalise(raw, default_region=region) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "12",
        "06 12 34 56 7",  # one digit short
        "06 12 34 56 78 9",  # one digit too many
        "01 23 45 67 89",  # a Paris landline cannot receive a code
        "+33 1 23 45 67 89",
        "08 00 12 34 56",  # a freephone number
        "+33 7 00 00 00 00",  # not allocated
        "+999 12345678",  # no such country code
        "06 12 34 56 78" + " 9" * 30,  # absurdly long input
        "<script>alert(1)</script>",
        "0612345678'; DROP TABLE verification_phonecheck;--",
    ],
)
def test_what_is_not_a_mobile_number_is_refused(raw):
    with pytest.raises(InvalidPhone) as caught:
        phone_normalise(raw)

    assert caught.value.code == "invalid_phone"
    assert caught.value.message


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+33612345678", "+33 6 •• •• •• 78"),
        ("+32470123456", "+32 4•• •• •• 56"),
        ("+447911123456", "+44 7••• ••••56"),
    ],
)
def test_a_masked_number_shows_its_country_first_digit_and_last_two(e164, shown):
    assert phone_mask(e164) == shown
