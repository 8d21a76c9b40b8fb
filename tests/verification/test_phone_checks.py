import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.verification import services, tasks
from apps.verification.errors import (
    AlreadyVerified,
    CodeExpired,
    InvalidPhone,
    PhoneCheckNotFound,
    ResendTooSoon,
    TooManyAttempts,
    TooManyChecks,
    TooManySends,
    WrongCode,
)
from apps.verification.models import PhoneCheck, SmsMessage
from tests.support import all_database_text

PHONE = "+33612345678"
START = "2026-11-22 10:00:00+00:00"


@pytest.fixture(autouse=True)
def _phone_code_settings(settings):
    settings.PHONE_CODE_TTL_MINUTES = 10
    settings.PHONE_CODE_MAX_ATTEMPTS = 5
    settings.PHONE_CODE_RESEND_SECONDS = 30


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def start(*, phone=PHONE, livemode=False, language="en") -> PhoneCheck:
    return services.phone_check_start(
        phone=phone,
        livemode=livemode,
        purpose="checkout",
        subject="payment_abc",
        language=language,
        now=timezone.now(),
    )


def verify(check: PhoneCheck, code: str) -> PhoneCheck:
    return services.phone_check_verify(check_id=check.public_id, code=code, now=timezone.now())


def resend(check: PhoneCheck) -> PhoneCheck:
    return services.phone_check_resend(check_id=check.public_id, now=timezone.now())


def a_wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


def code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def test_the_right_code_verifies_the_check(db, clock):
    check = start()

    verified = verify(check, check.test_code)

    assert verified.verified_at == timezone.now()
    assert verified.status_at(timezone.now()) == PhoneCheck.Status.VERIFIED
    assert services.phone_check_get(check_id=check.public_id).verified_at == timezone.now()


def test_a_check_has_a_public_id_and_remembers_what_it_protects(db, clock):
    check = start(phone="06 12 34 56 78")

    assert re.fullmatch(r"phonecheck_[0-9A-Za-z]{34}", check.public_id)
    assert (check.phone, check.purpose, check.subject) == (PHONE, "checkout", "payment_abc")
    assert check.expires_at == timezone.now() + timedelta(minutes=10)
    assert (check.attempts, check.sends) == (0, 1)
    assert re.fullmatch(r"\d{6}", check.test_code)


def test_the_code_is_sent_by_sms_in_the_customers_language(db, clock):
    check = start(language="en")

    sms = SmsMessage.objects.get(key=f"phonecheck:{check.public_id}:send:1")

    assert sms.phone == PHONE
    assert sms.text == (
        f"Tranche: your code is {check.test_code}. It expires in 10 minutes. Never share it."
    )
    assert sms.status == SmsMessage.Status.NOT_SENT_TEST_MODE


def test_a_language_tranche_does_not_speak_falls_back_to_french(db, clock):
    check = start(language="tlh")

    assert check.language == "fr"
    assert check.test_code in SmsMessage.objects.get().text


def test_a_regional_language_variant_is_understood(db, clock):
    assert start(language="en-GB").language == "en"


def test_an_invalid_phone_number_starts_nothing(db, clock):
    with pytest.raises(InvalidPhone):
        start(phone="01 23 45 67 89")

    assert not PhoneCheck.objects.exists()
    assert not SmsMessage.objects.exists()


def test_a_wrong_code_is_refused_with_the_attempts_left(db, clock):
    check = start()

    with pytest.raises(WrongCode) as caught:
        verify(check, a_wrong_code(check.test_code))

    assert caught.value.attempts_left == 4
    assert caught.value.code == "phone_code_wrong"
    assert caught.value.extra == {"attempts_left": 4}
    assert PhoneCheck.objects.get(pk=check.pk).attempts == 1


def test_five_wrong_codes_lock_the_check_and_the_sixth_try_is_refused_even_when_right(db, clock):
    check = start()
    wrong = a_wrong_code(check.test_code)
    for attempts_left in (4, 3, 2, 1):
        with pytest.raises(WrongCode) as caught:
            verify(check, wrong)
        assert caught.value.attempts_left == attempts_left

    with pytest.raises(TooManyAttempts):
        verify(check, wrong)
    with pytest.raises(TooManyAttempts):
        verify(check, check.test_code)

    locked = PhoneCheck.objects.get(pk=check.pk)
    assert locked.attempts == 5
    assert locked.locked_at == timezone.now()
    assert locked.verified_at is None
    assert locked.status_at(timezone.now()) == PhoneCheck.Status.LOCKED


def test_a_locked_check_cannot_get_a_new_code(db, clock):
    check = start()
    for _ in range(5):
        with pytest.raises((WrongCode, TooManyAttempts)):
            verify(check, a_wrong_code(check.test_code))
    clock.shift(timedelta(minutes=1))

    with pytest.raises(TooManyAttempts):
        resend(check)

    assert SmsMessage.objects.count() == 1


def test_garbage_counts_as_a_wrong_code(db, clock):
    check = start()

    for garbage in ("", "12345", "1234567", "abcdef"):
        with pytest.raises(WrongCode):
            verify(check, garbage)
    with pytest.raises(TooManyAttempts):
        verify(check, "1" * 10_000)

    assert PhoneCheck.objects.get(pk=check.pk).attempts == 5


def test_a_code_typed_with_spaces_is_understood(db, clock):
    check = start()
    code = check.test_code

    verified = verify(check, f" {code[:3]} {code[3:]} ")

    assert verified.verified_at is not None


def test_the_code_still_works_just_before_ten_minutes(db, clock):
    check = start()
    clock.shift(timedelta(minutes=9, seconds=59))

    assert verify(check, check.test_code).verified_at is not None


def test_the_code_expires_after_ten_minutes(db, clock):
    check = start()
    clock.shift(timedelta(minutes=10))

    with pytest.raises(CodeExpired):
        verify(check, check.test_code)

    expired = PhoneCheck.objects.get(pk=check.pk)
    assert expired.verified_at is None
    assert expired.attempts == 0  # an expired code is not a guess
    assert expired.status_at(timezone.now()) == PhoneCheck.Status.EXPIRED


def test_a_new_code_is_refused_within_thirty_seconds_of_the_last(db, clock):
    check = start()
    clock.shift(timedelta(seconds=12))

    with pytest.raises(ResendTooSoon) as caught:
        resend(check)

    assert caught.value.retry_after == 18
    assert caught.value.extra == {"retry_after": 18}
    assert SmsMessage.objects.count() == 1


def test_a_new_code_replaces_the_old_one_and_keeps_the_wrong_attempts(db, clock):
    check = start()
    old_code = check.test_code
    with pytest.raises(WrongCode):
        verify(check, a_wrong_code(old_code))
    clock.shift(timedelta(seconds=30))

    renewed = resend(check)

    assert renewed.sends == 2
    assert renewed.last_sent_at == timezone.now()
    assert renewed.expires_at == timezone.now() + timedelta(minutes=10)
    sms = SmsMessage.objects.get(key=f"phonecheck:{check.public_id}:send:2")
    assert renewed.test_code in sms.text
    if renewed.test_code != old_code:  # one chance in a million that the draw repeats
        with pytest.raises(WrongCode) as caught:
            verify(check, old_code)
        assert caught.value.attempts_left == 3
    assert verify(check, renewed.test_code).verified_at is not None


def test_a_new_code_gives_an_expired_check_ten_more_minutes(db, clock):
    check = start()
    clock.shift(timedelta(minutes=15))

    renewed = resend(check)
    clock.shift(timedelta(minutes=9))

    assert verify(check, renewed.test_code).verified_at is not None


def test_at_most_five_codes_are_sent_for_one_check(db, clock):
    check = start()
    for _ in range(4):
        clock.shift(timedelta(seconds=30))
        resend(check)
    clock.shift(timedelta(seconds=30))

    with pytest.raises(TooManySends):
        resend(check)

    assert SmsMessage.objects.count() == 5
    assert PhoneCheck.objects.get(pk=check.pk).sends == 5


def test_verifying_a_verified_check_again_returns_it(db, clock):
    check = start()
    first = verify(check, check.test_code)
    clock.shift(timedelta(minutes=30))

    again = verify(check, check.test_code)

    assert again.pk == first.pk
    assert again.verified_at == first.verified_at


def test_a_verified_check_refuses_another_code_without_counting_it(db, clock):
    check = start()
    verify(check, check.test_code)

    with pytest.raises(AlreadyVerified):
        verify(check, a_wrong_code(check.test_code))

    assert PhoneCheck.objects.get(pk=check.pk).attempts == 0


def test_a_verified_check_gets_no_new_code(db, clock):
    check = start()
    verify(check, check.test_code)
    clock.shift(timedelta(minutes=1))

    with pytest.raises(AlreadyVerified):
        resend(check)


def test_an_unknown_check_is_not_found(db, clock):
    with pytest.raises(PhoneCheckNotFound) as caught:
        services.phone_check_verify(check_id="phonecheck_nope", code="123456", now=timezone.now())

    assert caught.value.http_status == 404


def test_a_check_is_found_with_or_without_its_prefix(db, clock):
    check = start()

    found = services.phone_check_get(check_id=check.public_id.removeprefix("phonecheck_"))

    assert found.pk == check.pk


def test_a_number_gets_at_most_ten_checks_an_hour(db, clock):
    for _ in range(10):
        start()
        clock.shift(timedelta(minutes=5))

    with pytest.raises(TooManyChecks):
        start(phone="06 12 34 56 78")
    other_number = start(phone="+33612345679")
    clock.shift(timedelta(minutes=10))  # the first check is now more than an hour old
    again = start()

    assert other_number.phone != again.phone
    assert PhoneCheck.objects.filter(phone=PHONE).count() == 11


def test_a_test_mode_check_keeps_its_code_for_the_test_checkout(db, clock):
    check = start(livemode=False)

    assert check.test_code in all_database_text()


def test_a_live_check_never_stores_its_code_in_the_clear(
    db, clock, sms_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        check = start(livemode=True)
    sms = SmsMessage.objects.get()

    queued_text = all_database_text()
    assert tasks.send_sms(sms.pk) == SmsMessage.Status.SENT
    code = code_in(sms_provider.handed[0]["text"])
    sent_text = all_database_text()

    # A timestamp's microseconds may happen to spell the code: only look for it elsewhere.
    in_clear = re.compile(rf"(?<![\d.]){code}(?!\d)")
    assert check.test_code == ""
    assert not in_clear.search(queued_text)
    assert not in_clear.search(sent_text)
    assert SmsMessage.objects.get().text == (
        "Tranche: your code is ••••••. It expires in 10 minutes. Never share it."
    )
    assert verify(check, code).verified_at is not None


def test_a_live_check_sends_the_code_only_after_commit(
    db, clock, sms_provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        start(livemode=True)

    assert len(callbacks) == 1
    assert sms_provider.handed == []
    assert SmsMessage.objects.get().status == SmsMessage.Status.QUEUED
