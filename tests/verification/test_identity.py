"""Identity-document checks with the sandbox provider: from the photos to the verdict, and the
photos' end at the close of the retention period."""

from __future__ import annotations

import json
import threading
import traceback
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from apps.verification import identity, identity_sandbox, tasks
from apps.verification.errors import (
    IdentityCheckDecided,
    IdentityCheckInProgress,
    IdentityFileGone,
    IdentityProviderUnavailable,
    IdentityResultUnknown,
    IdentityWebhookRefused,
    TooManyIdentitySubmissions,
    UploadRefused,
)
from apps.verification.identity_files import identity_file_open
from apps.verification.identity_provider import SIGNATURE_HEADER, IdentityResult
from apps.verification.models import IdentityCheck
from tests.factories import UserFactory

TEST_FILES = Path(__file__).resolve().parents[2] / "docs" / "test-files" / "identity"
START = "2026-11-22 10:00:00+00:00"
BIRTH_DATE = date(1990, 5, 17)
JPEG_MAGIC = b"\xff\xd8\xff"
Status = IdentityCheck.Status


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Stored photos go to a folder of this test only."""
    location = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    settings.VERIFICATION_EVIDENCE_RETENTION_DAYS = 30
    settings.IDENTITY_PROVIDER = "apps.verification.identity_sandbox.SandboxIdentityProvider"
    return location


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def photo(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (TEST_FILES / name).read_bytes(), content_type="image/jpeg")


def start(*, subject="payment_abc", first_name="Élodie", last_name="Lefèvre") -> IdentityCheck:
    return identity.identity_check_start(
        livemode=False,
        purpose="checkout",
        subject=subject,
        first_name=first_name,
        last_name=last_name,
        birth_date=BIRTH_DATE,
        now=timezone.now(),
    )


def submit(check: IdentityCheck, document="id-approved.jpg", selfie="selfie.jpg"):
    return identity.identity_check_submit(
        check_id=check.public_id, document=photo(document), selfie=photo(selfie), now=timezone.now()
    )


def queued_answers() -> list[dict]:
    """The sandbox's answers waiting in the task queue, oldest first."""
    answers = []
    for queued in OrmQ.objects.order_by("id"):
        assert queued.func() == identity_sandbox.ANSWER_TASK
        answers.append(queued.args()[0])
    return answers


def deliver_answer() -> str:
    """Run the sandbox's latest queued answer, as the task worker would."""
    return tasks.identity_sandbox_answer(queued_answers()[-1])


def stored_files(media: Path) -> list[Path]:
    return sorted(path for path in media.rglob("*") if path.is_file())


def signed(payload: dict) -> tuple[bytes, str]:
    return identity_sandbox.sandbox_webhook_deliver(payload)


# --- starting ----------------------------------------------------------------------------


def test_starting_twice_for_one_subject_returns_the_same_check(db, clock):
    first = start()

    again = start()

    assert again.pk == first.pk
    assert first.status == Status.WAITING_FILES
    assert (first.expected_first_name, first.expected_birth_date) == ("Élodie", BIRTH_DATE)
    assert start(subject="payment_other").pk != first.pk


def test_a_decided_check_is_not_reopened_by_starting_again(db, clock):
    check = start()
    submit(check, document="id-rejected.jpg")
    deliver_answer()

    again = start()

    assert again.pk != check.pk
    assert again.status == Status.WAITING_FILES


def test_a_check_in_retake_is_returned_when_starting_again(db, clock):
    check = start()
    submit(check, document="id-retake.jpg")
    deliver_answer()

    assert start().pk == check.pk


# --- submitting --------------------------------------------------------------------------


def test_submitting_stores_both_photos_encrypted_and_hands_them_to_the_provider(db, clock, media):
    check = start()

    check = submit(check)

    assert check.status == Status.SUBMITTED
    assert check.submissions == 1
    assert check.submitted_at == timezone.now()
    assert check.provider_reference.startswith("idsbx_")
    assert (check.document_content_type, check.selfie_content_type) == ("image/jpeg",) * 2
    files = stored_files(media)
    assert len(files) == 2
    for path in files:
        content = path.read_bytes()
        assert not content.startswith(JPEG_MAGIC)
        assert b"JFIF" not in content
        assert path.name.endswith(".bin")
        assert "id-approved" not in str(path) and "selfie" not in path.name
    document, content_type = identity_file_open(check, "document")
    assert document.startswith(JPEG_MAGIC)
    assert content_type == "image/jpeg"
    selfie, _ = identity_file_open(check, "selfie")
    assert selfie.startswith(JPEG_MAGIC) and selfie != document


def test_a_refused_photo_stores_nothing_and_leaves_the_check_as_it_was(db, clock, media):
    check = start()
    fake = SimpleUploadedFile("selfie.jpg", (TEST_FILES / "fake.jpg").read_bytes())

    with pytest.raises(UploadRefused) as refused:
        identity.identity_check_submit(
            check_id=check.public_id,
            document=photo("id-approved.jpg"),
            selfie=fake,
            now=timezone.now(),
        )

    assert refused.value.field == "selfie"
    check.refresh_from_db()
    assert (check.status, check.submissions) == (Status.WAITING_FILES, 0)
    assert stored_files(media) == []
    assert OrmQ.objects.count() == 0


def test_photos_cannot_be_sent_while_the_provider_checks_them(db, clock):
    check = submit(start())

    with pytest.raises(IdentityCheckInProgress):
        submit(check)


def test_photos_cannot_be_sent_for_a_decided_check(db, clock):
    check = submit(start())
    deliver_answer()

    with pytest.raises(IdentityCheckDecided):
        submit(check)


def test_a_provider_timeout_marks_the_check_and_new_photos_may_be_sent(db, clock):
    check = start()

    with pytest.raises(IdentityProviderUnavailable):
        submit(check, document="id-timeout.jpg")

    check.refresh_from_db()
    assert check.status == Status.PROVIDER_ERROR
    assert check.provider_reference == ""
    assert OrmQ.objects.count() == 0
    check = submit(check)
    assert (check.status, check.submissions) == (Status.SUBMITTED, 2)


def test_a_provider_that_fails_unexpectedly_counts_as_unavailable(db, clock, monkeypatch):
    def broken(self, submission):
        raise ConnectionResetError("peer reset")

    monkeypatch.setattr(identity_sandbox.SandboxIdentityProvider, "submit", broken)
    check = start()

    with pytest.raises(IdentityProviderUnavailable):
        submit(check)

    check.refresh_from_db()
    assert check.status == Status.PROVIDER_ERROR


# --- the verdict -------------------------------------------------------------------------


def test_the_verdict_arrives_by_the_providers_background_task(db, clock):
    check = submit(start())
    answers = queued_answers()
    assert len(answers) == 1
    clock.shift(timedelta(seconds=1))

    assert deliver_answer() == Status.APPROVED

    check.refresh_from_db()
    assert check.status == Status.APPROVED
    assert check.result_code == "clear"
    assert (check.names_match, check.birth_date_match) == (True, True)
    assert check.decided_at == timezone.now()
    assert check.files_delete_after == check.decided_at + timedelta(days=30)
    assert check.provider_result["status"] == "approved"
    assert check.provider_result["reference"] == check.provider_reference
    assert check.provider_result["document"]["last_name"] == "Lefèvre"


def test_the_verdict_can_be_pulled_once_the_provider_has_decided(db, clock):
    check = submit(start(), document="id-rejected.jpg")

    still = identity.identity_check_refresh(check_id=check.public_id, now=timezone.now())
    clock.shift(timedelta(seconds=identity_sandbox.PROCESSING_SECONDS))
    decided = identity.identity_check_refresh(check_id=check.public_id, now=timezone.now())
    again = identity.identity_check_refresh(check_id=check.public_id, now=timezone.now())

    assert still.status == Status.SUBMITTED
    assert decided.status == Status.REJECTED
    assert decided.result_code == "document_forged"
    assert decided.provider_result["checks"]["document_authenticity"] == "failed"
    assert again.decided_at == decided.decided_at


def test_refreshing_a_check_that_waits_for_no_verdict_asks_nobody(db, clock, monkeypatch):
    def no_call(self, *, reference):
        raise AssertionError("the provider was asked")

    monkeypatch.setattr(identity_sandbox.SandboxIdentityProvider, "result", no_call)
    check = start()

    assert identity.identity_check_refresh(check_id=check.public_id, now=timezone.now()).pk == (
        check.pk
    )


def test_a_replayed_or_late_verdict_changes_nothing(db, clock):
    check = submit(start())
    payload = queued_answers()[0]
    tasks.identity_sandbox_answer(payload)
    decided = IdentityCheck.objects.get(pk=check.pk)
    clock.shift(timedelta(hours=2))
    late_retake = {**payload, "status": "retake", "reason_code": "document_unreadable"}

    tasks.identity_sandbox_answer(payload)
    tasks.identity_sandbox_answer(late_retake)

    check.refresh_from_db()
    assert check.status == Status.APPROVED
    assert check.decided_at == decided.decided_at
    assert check.provider_result == decided.provider_result


def test_another_persons_document_is_rejected_as_a_mismatch(db, clock):
    check = submit(start(), document="id-other-person.jpg")

    deliver_answer()

    check.refresh_from_db()
    assert check.status == Status.REJECTED
    assert check.result_code == "identity_mismatch"
    assert (check.names_match, check.birth_date_match) == (False, False)
    # The provider's own verdict is kept as it was.
    assert check.provider_result["status"] == "approved"
    assert check.provider_result["document"]["first_name"] == "Camille"
    assert check.decided_at is not None


def result_showing(check, *, first_name, last_name, birth_date=BIRTH_DATE, status="approved"):
    return IdentityResult(
        reference=check.provider_reference,
        status=status,
        reason_code="clear",
        first_name=first_name,
        last_name=last_name,
        birth_date=birth_date,
        document_type="passport",
    )


def record(check, result) -> IdentityCheck:
    return identity.identity_result_record(
        provider_reference=check.provider_reference, result=result, now=timezone.now()
    )


def test_a_different_birth_date_is_a_mismatch(db, clock):
    check = submit(start())

    check = record(
        check,
        result_showing(
            check, first_name="Élodie", last_name="Lefèvre", birth_date=date(1990, 5, 18)
        ),
    )

    assert check.status == Status.REJECTED
    assert check.result_code == "identity_mismatch"
    assert (check.names_match, check.birth_date_match) == (True, False)


@pytest.mark.parametrize(
    ("expected", "shown"),
    [
        (("Élodie", "Lefèvre"), ("ELODIE", "LEFEVRE")),
        (("elodie", "lefevre"), ("Élodie", "Lefèvre")),
        (("Jean-Pierre", "Saint-Exupéry"), ("JEAN PIERRE", "SAINT EXUPERY")),
        (("Marie", "O'Neil"), ("MARIE CLAIRE ANNE", "ONEIL")),
        (("Zoë", "Müller-Lüdenscheidt"), ("ZOE", "MULLER LUDENSCHEIDT")),
        (("Bjørn", "Cœur"), ("BJORN", "COEUR")),
    ],
)
def test_names_match_whatever_the_case_accents_and_hyphens(db, clock, expected, shown):
    check = submit(start(first_name=expected[0], last_name=expected[1]))

    check = record(check, result_showing(check, first_name=shown[0], last_name=shown[1]))

    assert check.names_match is True
    assert check.status == Status.APPROVED


@pytest.mark.parametrize(
    ("expected", "shown"),
    [
        (("Élodie", "Lefèvre"), ("ELODIE", "LEFEBVRE")),
        (("Marie", "Martin"), ("ANNE MARIE", "MARTIN")),
        (("Marie", "Martin"), ("", "")),
    ],
)
def test_other_names_do_not_match(db, clock, expected, shown):
    check = submit(start(first_name=expected[0], last_name=expected[1]))

    check = record(check, result_showing(check, first_name=shown[0], last_name=shown[1]))

    assert check.names_match is False
    assert (check.status, check.result_code) == (Status.REJECTED, "identity_mismatch")


def test_a_retake_asks_for_new_photos_which_may_then_be_approved(
    db, clock, media, django_capture_on_commit_callbacks
):
    check = submit(start(), document="id-retake.jpg")
    deliver_answer()
    check.refresh_from_db()
    assert (check.status, check.result_code) == (Status.RETAKE, "document_unreadable")
    assert check.decided_at is None
    first_photos = stored_files(media)

    with django_capture_on_commit_callbacks(execute=True):
        check = submit(check)

    assert (check.status, check.submissions) == (Status.SUBMITTED, 2)
    # Deleted after the retention period even if the provider never answers.
    assert check.files_delete_after == timezone.now() + timedelta(days=30)
    remaining = stored_files(media)
    assert len(remaining) == 2
    assert not set(remaining) & set(first_photos)  # the unusable photos are gone
    deliver_answer()
    check.refresh_from_db()
    assert check.status == Status.APPROVED


def test_an_older_attempts_verdict_is_not_taken_for_the_new_photos(db, clock):
    check = submit(start(), document="id-retake.jpg")
    first_answer = queued_answers()[0]
    tasks.identity_sandbox_answer(first_answer)
    submit(IdentityCheck.objects.get(pk=check.pk))

    outcome = tasks.identity_sandbox_answer({**first_answer, "status": "approved"})

    assert outcome == "ignored"
    check.refresh_from_db()
    assert check.status == Status.SUBMITTED


def test_at_most_four_sets_of_photos_are_sent(db, clock):
    check = start()
    for _ in range(4):
        submit(check, document="id-retake.jpg")
        deliver_answer()

    with pytest.raises(TooManyIdentitySubmissions):
        submit(check)

    check.refresh_from_db()
    assert (check.status, check.submissions) == (Status.RETAKE, 4)
    assert identity.identity_attempts_left(check) == 0


class ImmediateSandbox(identity_sandbox.SandboxIdentityProvider):
    """A provider whose answer comes back before ``submit`` has even returned."""

    def _answer_later(self, result):
        tasks.identity_sandbox_answer(result.as_dict())


def test_a_verdict_that_beats_the_reference_to_the_database_is_recorded(db, clock, settings):
    settings.IDENTITY_PROVIDER = f"{__name__}.ImmediateSandbox"

    check = submit(start())

    check.refresh_from_db()
    assert check.status == Status.APPROVED
    assert check.provider_reference.startswith("idsbx_")
    assert check.provider_result["reference"] == check.provider_reference


# --- the webhook -------------------------------------------------------------------------


def test_the_webhook_records_a_verdict_signed_by_the_provider(db, clock, client):
    check = submit(start())
    body, signature = signed(queued_answers()[0])

    response = client.post(
        reverse("verification:identity-webhook"),
        body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature},
    )

    assert response.status_code == 200
    assert response.json() == {"received": True, "recorded": True, "check": check.public_id}
    check.refresh_from_db()
    assert check.status == Status.APPROVED


def test_the_webhook_refuses_a_bad_signature_and_records_nothing(db, clock, client):
    check = submit(start())
    body, signature = signed(queued_answers()[0])
    forged = json.dumps({**json.loads(body), "status": "rejected"}, sort_keys=True).encode()
    assert forged != body

    responses = [
        client.post(
            reverse("verification:identity-webhook"),
            sent,
            content_type="application/json",
            headers=headers,
        )
        for sent, headers in [
            (body, {SIGNATURE_HEADER: "sha256=" + "0" * 64}),
            (body, {}),
            (forged, {SIGNATURE_HEADER: signature}),
        ]
    ]

    assert [response.status_code for response in responses] == [400, 400, 400]
    assert responses[0].json()["error"]["code"] == "identity_webhook_refused"
    check.refresh_from_db()
    assert check.status == Status.SUBMITTED


def test_the_webhook_refuses_a_signed_body_it_cannot_read(db, clock):
    for payload in (
        b"[1, 2]",
        b"not json",
        b'{"status": "approved"}',
        b'{"reference": "x", "status": "maybe"}',
    ):
        body, signature = (
            payload,
            identity_sandbox.webhook_signature(
                secret=identity_sandbox.sandbox_webhook_secret(), body=payload
            ),
        )
        with pytest.raises(IdentityWebhookRefused):
            identity.identity_webhook_receive(body=body, signature=signature, now=timezone.now())


def test_the_webhook_acknowledges_a_verdict_no_check_waits_for(db, clock, client):
    body, signature = signed(IdentityResult(reference="idsbx_unknown", status="approved").as_dict())

    response = client.post(
        reverse("verification:identity-webhook"),
        body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature},
    )

    assert response.status_code == 200
    assert response.json()["recorded"] is False
    with pytest.raises(IdentityResultUnknown):
        identity.identity_webhook_receive(body=body, signature=signature, now=timezone.now())


def test_the_webhook_takes_posts_only(db, client):
    assert client.get(reverse("verification:identity-webhook")).status_code == 405


# --- operators' view of the photos -------------------------------------------------------


def operator(client, *, allowed=True):
    user = UserFactory(is_staff=True)
    if allowed:
        user.user_permissions.add(Permission.objects.get(codename="view_identitycheck"))
    client.force_login(user)
    return user


def test_an_operator_sees_a_photo_decrypted(db, clock, client):
    check = submit(start())
    operator(client)

    response = client.get(reverse("verification:identity-file", args=[check.public_id, "document"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    assert response.content == identity_file_open(check, "document")[0]


def test_the_photos_are_not_shown_to_others(db, clock, client):
    check = submit(start())
    url = reverse("verification:identity-file", args=[check.public_id, "selfie"])

    anonymous = client.get(url)
    operator(client, allowed=False)
    not_allowed = client.get(url)

    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    assert not_allowed.status_code == 403


def test_the_operators_view_knows_two_photos_only(db, clock, client):
    check = submit(start())
    operator(client)

    response = client.get(reverse("verification:identity-file", args=[check.public_id, "passport"]))

    assert response.status_code == 404


def test_the_admin_shows_a_check_with_links_to_its_photos(db, clock, client, admin_user):
    check = submit(start())
    deliver_answer()
    client.force_login(admin_user)

    page = client.get(reverse("admin:verification_identitycheck_change", args=[check.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert reverse("verification:identity-file", args=[check.public_id, "document"]) in text
    assert "document_authenticity" in text
    assert client.get(reverse("admin:verification_identitycheck_changelist")).status_code == 200


# --- retention ---------------------------------------------------------------------------


def test_photos_are_deleted_when_the_retention_period_ends(db, clock, media, client):
    check = submit(start())
    deliver_answer()
    decided_at = timezone.now()

    early = identity.identity_evidence_delete_expired(now=decided_at + timedelta(days=29))
    deleted = identity.identity_evidence_delete_expired(now=decided_at + timedelta(days=30))
    again = identity.identity_evidence_delete_expired(now=decided_at + timedelta(days=31))

    assert (early, deleted, again) == (0, 1, 0)
    assert stored_files(media) == []
    check.refresh_from_db()
    assert (check.document_file.name, check.selfie_file.name) == ("", "")
    assert check.files_deleted_at == decided_at + timedelta(days=30)
    assert check.status == Status.APPROVED  # the verdict and its evidence stay
    assert check.provider_result["status"] == "approved"
    with pytest.raises(IdentityFileGone):
        identity_file_open(check, "document")
    operator(client)
    url = reverse("verification:identity-file", args=[check.public_id, "document"])
    assert client.get(url).status_code == 404


def test_the_retention_sweep_is_a_task_that_does_nothing_twice(db, clock, time_machine):
    submit(start())
    deliver_answer()
    time_machine.shift(timedelta(days=30))

    assert tasks.delete_expired_evidence() == 1
    assert tasks.delete_expired_evidence() == 0


def test_photos_of_an_abandoned_retake_are_deleted_too(db, clock, media):
    submit(start(), document="id-retake.jpg")
    deliver_answer()

    deleted = identity.identity_evidence_delete_expired(now=timezone.now() + timedelta(days=30))

    assert deleted == 1
    assert stored_files(media) == []


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_delete_each_checks_photos_once(clock, media, monkeypatch):
    for number in range(6):
        submit(start(subject=f"payment_{number}"))
        deliver_answer()
    OrmQ.objects.all().delete()
    deletions: list[str] = []
    storage_class = type(default_storage._wrapped)
    real_delete = storage_class.delete

    def counting_delete(self, name):
        deletions.append(name)
        return real_delete(self, name)

    monkeypatch.setattr(storage_class, "delete", counting_delete)
    later = timezone.now() + timedelta(days=31)
    gate = threading.Barrier(3)
    counts: list[int] = []
    failures: list[str] = []

    def sweep():
        try:
            gate.wait()
            counts.append(identity.identity_evidence_delete_expired(now=later, limit=4))
        except BaseException:
            failures.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures
    assert sum(counts) == 6
    assert len(deletions) == len(set(deletions)) == 12
    assert stored_files(media) == []
    assert IdentityCheck.objects.filter(files_deleted_at__isnull=True).count() == 0
