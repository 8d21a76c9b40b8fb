"""Operators' pages for credit decisions: the review queue with its evidence, approving or
refusing behind a confirmation, versions of the rules and the deny list."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.payments.decision import DEFAULT_RULES
from apps.payments.models import (
    Checkout,
    CreditDecision,
    DecisionReview,
    DecisionRuleSet,
    DenyListEntry,
    Payment,
)
from apps.payments.services.scoring import rules_active
from apps.payments.services.transitions import payment_lock, payment_transition
from apps.verification.models import BankCheck, IdentityCheck
from tests.conftest import make_shop
from tests.payments.builders import payment_create_for

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:payments_decisionreview_changelist")
RULES_ADD = reverse("admin:payments_decisionruleset_add")
RULES_LIST = reverse("admin:payments_decisionruleset_changelist")
DENY_ADD = reverse("admin:payments_denylistentry_add")
DENY_LIST = reverse("admin:payments_denylistentry_changelist")


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser(
        username="operator", email="operator@tranche.example", password="secret"
    )


@pytest.fixture
def browser(operator) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(operator)
    return client


def _review_waiting_for_an_operator(*, message: str = "I have had a steady job for years."):
    """A payment scored maybe, with identity and bank evidence, contested by its customer."""
    now = timezone.now()
    payment = payment_create_for(make_shop())
    with transaction.atomic():
        payment_transition(payment_lock(payment_id=payment.pk), "scored_maybe", now=now)
    identity = IdentityCheck.objects.create(
        livemode=False,
        purpose="payment",
        subject=payment.public_id,
        status=IdentityCheck.Status.APPROVED,
        expected_first_name="Camille",
        expected_last_name="Martin",
        names_match=True,
        birth_date_match=False,
        result_code="document_valid",
        provider_result={"document_type": "passport", "verdict": "clear"},
        created_at=now,
    )
    bank = BankCheck.objects.create(
        livemode=False,
        purpose="payment",
        subject=payment.public_id,
        status=BankCheck.Status.ANALYSED,
        bank_name="Banque Exemple",
        consent_at=now,
        created_at=now,
        monthly_income_cents=250_000,
        repayment_capacity_cents=61_234,
        analysis={
            "monthly_income_cents": 250_000,
            "fixed_charges_cents": 98_766,
            "credit_repayments_cents": 40_000,
            "gambling_cents": 12_345,
            "overdraft_days": 7,
            "repayment_capacity_cents": 61_234,
            "flags": ["frequent_overdraft", "gambling"],
        },
    )
    Checkout.objects.create(
        payment=payment,
        step=Checkout.Step.MORE_INFO,
        email="camille.martin@example.com",
        identity_check_id=identity.public_id,
        bank_check_id=bank.public_id,
        created_at=now,
        updated_at=now,
    )
    decision = CreditDecision.objects.create(
        payment=payment,
        outcome=CreditDecision.Outcome.MAYBE,
        score=55,
        reasons=[
            {
                "code": "velocity_customer_cards",
                "message": "Several cards were added in a short time.",
                "points": -25,
                "category": "fraud",
            },
            {
                "code": "amount_very_large",
                "message": "The purchase amount is very high.",
                "points": -15,
                "category": "credit",
            },
        ],
        asks=["identity", "bank"],
        features={"purchase_cents": 45_000, "customer_cards_recent": 4, "phone_verified": True},
        rules_version=DEFAULT_RULES["version"],
        created_at=now,
    )
    review = DecisionReview.objects.create(
        payment=payment,
        decision=decision,
        kind=DecisionReview.Kind.CONTESTED,
        customer_message=message,
        created_at=now,
    )
    return review, identity, bank


def _decide_url(review: DecisionReview, verdict: str) -> str:
    return reverse("admin:payments_decisionreview_decide", args=[review.pk, verdict])


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_queue_lists_an_open_review_and_its_page_shows_reasons_and_evidence(browser):
    review, identity, bank = _review_waiting_for_an_operator()
    decided, _, _ = _review_waiting_for_an_operator()
    DecisionReview.objects.filter(pk=decided.pk).update(status=DecisionReview.Status.REFUSED)

    queue = browser.get(QUEUE)
    everything = browser.get(QUEUE + "?status=all")
    page = browser.get(reverse("admin:payments_decisionreview_change", args=[review.pk]))

    assert list(queue.context["cl"].result_list) == [review]
    assert [r.pk for r in everything.context["cl"].result_list] == [review.pk, decided.pk]
    listed = queue.content.decode()
    assert review.payment.public_id in listed
    assert reverse("admin:payments_payment_change", args=[review.payment_id]) in listed
    html = page.content.decode()
    assert page.status_code == 200
    assert "I have had a steady job for years." in html
    assert "Several cards were added in a short time." in html
    assert "<td>-25</td>" in html and "<td>fraud</td>" in html
    assert "customer cards recent" in html and "<td>4</td>" in html
    assert reverse("admin:verification_identitycheck_change", args=[identity.pk]) in html
    assert "document_valid" in html and "passport" in html
    assert reverse("admin:verification_bankcheck_change", args=[bank.pk]) in html
    assert "612.34" in html and "123.45" in html and "frequent_overdraft, gambling" in html
    assert _decide_url(review, "approve") in html and _decide_url(review, "refuse") in html


def test_approving_through_the_confirmation_page_accepts_the_payment(browser, operator):
    review, _, _ = _review_waiting_for_an_operator()

    confirmation = browser.get(_decide_url(review, "approve"))
    without_note = browser.post(_decide_url(review, "approve"), {"note": ""})
    done = browser.post(
        _decide_url(review, "approve"), {"note": "Payslips checked by phone."}, follow=True
    )

    review.refresh_from_db()
    payment = Payment.objects.get(pk=review.payment_id)
    assert confirmation.status_code == 200
    assert 'name="note"' in confirmation.content.decode()
    assert without_note.status_code == 200 and without_note.context["form"].errors["note"]
    assert review.status == DecisionReview.Status.APPROVED
    assert review.decided_by == operator
    assert review.operator_note == "Payslips checked by phone."
    assert payment.state == "scored_yes"
    by_operator = CreditDecision.objects.get(payment=payment, made_by="operator")
    assert by_operator.outcome == "yes"
    assert by_operator.reasons[0]["message"] == "Payslips checked by phone."
    assert any("Approved" in message for message in _messages(done))


def test_refusing_through_the_confirmation_page_refuses_the_payment(browser):
    review, _, _ = _review_waiting_for_an_operator()

    browser.post(_decide_url(review, "refuse"), {"note": "Gambling every week."})

    review.refresh_from_db()
    assert review.status == DecisionReview.Status.REFUSED
    assert Payment.objects.get(pk=review.payment_id).state == "scored_no"
    by_operator = CreditDecision.objects.get(payment_id=review.payment_id, made_by="operator")
    assert by_operator.outcome == "no"


def test_deciding_twice_shows_an_error_and_changes_nothing(browser):
    review, _, _ = _review_waiting_for_an_operator()
    browser.post(_decide_url(review, "refuse"), {"note": "Gambling every week."})

    again = browser.post(_decide_url(review, "approve"), {"note": "Changed my mind."}, follow=True)

    review.refresh_from_db()
    assert review.status == DecisionReview.Status.REFUSED
    assert review.operator_note == "Gambling every week."
    assert Payment.objects.get(pk=review.payment_id).state == "scored_no"
    by_operator = CreditDecision.objects.filter(payment_id=review.payment_id, made_by="operator")
    assert by_operator.count() == 1
    assert any("already decided" in message for message in _messages(again))
    assert _decide_url(review, "approve") not in again.content.decode()


def test_only_operators_who_may_change_reviews_may_decide(operator):
    review, _, _ = _review_waiting_for_an_operator()
    viewer = get_user_model().objects.create_user(username="viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_decisionreview"))
    client = Client(headers={"accept-language": "en"})
    client.force_login(viewer)

    page = client.get(reverse("admin:payments_decisionreview_change", args=[review.pk]))
    refused = client.post(_decide_url(review, "approve"), {"note": "Looks fine."})

    review.refresh_from_db()
    assert page.status_code == 200
    assert _decide_url(review, "approve") not in page.content.decode()
    assert refused.status_code == 403
    assert review.status == DecisionReview.Status.OPEN


def test_the_new_version_form_starts_from_the_active_rules(browser):
    page = browser.get(RULES_ADD)

    shown = json.loads(page.context["adminform"].form.initial["rules"])
    assert shown["rules"] == rules_active().data["rules"]
    assert shown["yes_from"] == rules_active().data["yes_from"]


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ('{"yes_from": 70,', "This is not valid JSON"),
        ('{"rules": {"moon_phase": {"points": -5}}}', "Unknown rule: moon_phase."),
        ('{"yes_from": "seventy"}', "yes_from must be a whole number."),
    ],
)
def test_a_rule_version_with_bad_json_or_an_unknown_rule_is_refused(browser, rules, error):
    response = browser.post(RULES_ADD, {"version": "2026-12-v2", "rules": rules, "note": ""})

    assert response.status_code == 200
    assert any(error in message for message in response.context["adminform"].form.errors["rules"])
    assert not DecisionRuleSet.objects.exists()


def test_a_valid_version_is_saved_read_only_and_can_be_made_active(browser, operator):
    old = DecisionRuleSet.objects.create(
        version="2026-11-v1b", rules=DEFAULT_RULES, is_active=True, created_at=timezone.now()
    )
    rules = {"yes_from": 75, "rules": {"amount_large": {"points": -12}}}

    saved = browser.post(
        RULES_ADD, {"version": "2026-12-v2", "rules": json.dumps(rules), "note": "Stricter"}
    )
    new = DecisionRuleSet.objects.get(version="2026-12-v2")
    edit = browser.post(
        reverse("admin:payments_decisionruleset_change", args=[new.pk]),
        {"version": "2026-12-v2", "rules": "{}", "note": "edited"},
    )
    browser.post(RULES_LIST, {"action": "make_active", ACTION_CHECKBOX_NAME: [new.pk]})

    new.refresh_from_db()
    old.refresh_from_db()
    assert saved.status_code == 302
    assert new.created_by == operator and new.note == "Stricter"
    assert new.rules["version"] == "2026-12-v2"
    assert new.rules["yes_from"] == 75 and new.rules["rules"]["amount_large"]["points"] == -12
    assert edit.status_code == 403
    assert new.is_active and not old.is_active
    assert rules_active().version == "2026-12-v2"
    assert LogEntry.objects.filter(object_id=str(new.pk), user=operator).exists()


def test_making_two_versions_active_at_once_is_refused(browser):
    now = timezone.now()
    first = DecisionRuleSet.objects.create(version="a", rules=DEFAULT_RULES, created_at=now)
    second = DecisionRuleSet.objects.create(version="b", rules=DEFAULT_RULES, created_at=now)

    response = browser.post(
        RULES_LIST,
        {"action": "make_active", ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
        follow=True,
    )

    assert not DecisionRuleSet.objects.filter(is_active=True).exists()
    assert any("exactly one" in message for message in _messages(response))


def test_an_operator_adds_an_email_to_the_deny_list_normalised_then_removes_it(browser):
    added = browser.post(
        DENY_ADD,
        {
            "kind": "email",
            "value": "  Fraudster@Example.COM ",
            "livemode": "on",
            "note": "chargebacks",
        },
    )
    entry = DenyListEntry.objects.get()
    duplicate = browser.post(
        DENY_ADD, {"kind": "email", "value": "fraudster@example.com", "livemode": "on"}
    )
    browser.post(DENY_LIST, {"action": "remove", ACTION_CHECKBOX_NAME: [entry.pk]})

    entry.refresh_from_db()
    assert added.status_code == 302
    assert entry.value == "fraudster@example.com"
    assert entry.source == "operator" and entry.livemode and entry.note == "chargebacks"
    assert duplicate.status_code == 200 and duplicate.context["adminform"].form.errors["value"]
    assert DenyListEntry.objects.count() == 1
    assert entry.removed_at is not None


def test_a_phone_is_listed_in_its_international_form_and_a_bad_one_is_refused(browser):
    browser.post(DENY_ADD, {"kind": "phone", "value": "06 12 34 56 78", "note": ""})
    landline = browser.post(DENY_ADD, {"kind": "phone", "value": "01 23 45 67 89", "note": ""})

    assert list(DenyListEntry.objects.values_list("value", "livemode")) == [("+33612345678", False)]
    assert landline.context["adminform"].form.errors["value"]


def test_a_credit_decision_shows_its_reasons_and_features_as_tables(browser):
    review, _, _ = _review_waiting_for_an_operator()

    page = browser.get(reverse("admin:payments_creditdecision_change", args=[review.decision_id]))
    listed = browser.get(reverse("admin:payments_creditdecision_changelist") + "?outcome=maybe")

    html = page.content.decode()
    assert "The purchase amount is very high." in html and "<td>credit</td>" in html
    assert "<th>purchase</th>" in html and "450.00" in html
    assert list(listed.context["cl"].result_list) == [review.decision]
