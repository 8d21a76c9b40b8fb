"""The sandbox card processor: an outside party that lives in our process.

It behaves like a real processor, not like a mock that always says yes: it keeps its own
records (the ``Sandbox*`` tables, which Tranche's code never reads), never stores a card
number or CVC (token, BIN, last 4, expiry and the test card's ``scenario`` only), answers
after ``settings.SANDBOX_PROCESSOR_LATENCY_MS``, honours idempotency keys (one key moves money
once, even when two calls race), runs 3-D Secure through its own ACS page
(``apps.payments.sandbox_views``), and delivers a daily settlement report. Outcomes are chosen
by the test card numbers in ``TEST_CARDS``; other Luhn-valid numbers succeed, described by the
BIN table in ``data/bin_ranges.csv``.

Like a real processor it keeps its own clock (``timezone.now()``): callers do not tell it the
time, and tests move it with time-machine.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import secrets
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from apps.common.dates import BUSINESS_TZ, business_date
from apps.ledger.reconciliation import SettlementLine
from apps.ledger.settlement_reports import DirectorySettlementReports
from apps.payments.card_rules import (
    brand_from_number,
    card_valid_through,
    normalise_number,
    number_refusal,
)
from apps.payments.links import absolute
from apps.payments.models import SandboxCard, SandboxCharge, SandboxThreeDS
from apps.payments.processor import (
    BinInfo,
    CardDetails,
    ChargeRequest,
    ChargeResult,
    InvalidCard,
    ProcessorError,
    ProcessorUnavailable,
    ThreeDSStart,
    UnknownCharge,
)

BIN_RANGES_FILE = Path(__file__).resolve().parent / "data" / "bin_ranges.csv"
BIN_COLUMNS = ("prefix", "brand", "funding", "product", "issuer_country")
BRANDS = frozenset({"cb", "visa", "mastercard", "maestro", "amex", "other"})
FUNDINGS = frozenset({"credit", "debit", "prepaid"})
PRODUCTS = frozenset({"", "electron", "maestro", "virtual"})
PREFIX_LENGTHS = (8, 7, 6)  # longest match wins

# What a test card does (SandboxCard.scenario).
SUCCESS = "success"
CHALLENGE = "challenge"
DO_NOT_HONOR = "do_not_honor"
INSUFFICIENT_FUNDS = "insufficient_funds"
LATER_INSUFFICIENT_FUNDS = "later_insufficient_funds"
TIMEOUT = "timeout"
# A detached card keeps its scenario after this prefix (for the record) and is never charged.
DETACHED_PREFIX = "detached:"
TOKEN_DETACHED = "token_detached"  # noqa: S105 (a decline code, not a secret)

# 3-D Secure and charge statuses, as the interface names them.
AUTHENTICATED = "authenticated"
FAILED = "failed"
# SandboxThreeDS.status holds 12 characters: "authenticated" is stored under this name.
APPROVED = "approved"
SUCCEEDED = "succeeded"
DECLINED = "declined"
CHARGE = "charge"
REFUND = "refund"

_TEST_CARDS = (
    ("4970100000000006", SUCCESS, "CB (Visa), France, debit: succeeds, 3-D Secure frictionless"),
    (
        "4970100000000014",
        CHALLENGE,
        "CB (Visa), France: 3-D Secure challenge on the sandbox bank page "
        "(Approve succeeds, Deny fails)",
    ),
    ("5130100000000000", SUCCESS, "Mastercard, France, credit: succeeds"),
    ("4970200000000004", SUCCESS, "CB (Visa), Belgium: succeeds"),
    ("4000000000000002", DO_NOT_HONOR, "Visa, France: declined (do_not_honor)"),
    ("4000000000009995", INSUFFICIENT_FUNDS, "Visa, France: declined (insufficient_funds)"),
    (
        "4970100000000345",
        LATER_INSUFFICIENT_FUNDS,
        "CB (Visa), France: succeeds at checkout; later automatic debits are declined "
        "(insufficient_funds)",
    ),
    ("4970150000000001", SUCCESS, "CB, France, prepaid: refused by the card rules"),
    ("4026000000000002", SUCCESS, "Visa Electron, France: refused by the card rules"),
    ("6759000000000000", SUCCESS, "Maestro, France: refused by the card rules"),
    ("4970180000000008", SUCCESS, "CB, France, virtual card: refused by the card rules"),
    ("4000560000000005", SUCCESS, "Visa, issued in the United States: refused by the card rules"),
    (
        "4000000000007775",
        TIMEOUT,
        "Visa, France: the processor times out; the charge (or refund) did go through "
        "(ask for its status with the idempotency key, or repeat the call with it)",
    ),
)
# (number, description): for the README. Any future expiry and any 3-digit CVC.
TEST_CARDS: list[tuple[str, str]] = [(number, text) for number, _s, text in _TEST_CARDS]
SCENARIOS: dict[str, str] = {number: scenario for number, scenario, _t in _TEST_CARDS}


class InvalidRequest(ProcessorError):
    """The call itself was malformed (a bug in the caller, not a card problem)."""

    code = "invalid_request"
    http_status = 400


class ProcessorKeyReused(ProcessorError):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = "This idempotency key was already used for another request."


class UnknownToken(ProcessorError):
    code = "unknown_token"
    http_status = 404
    default_message = "The processor knows no such card token in this mode."


class UnknownAuthentication(ProcessorError):
    code = "unknown_authentication"
    http_status = 404
    default_message = "The processor knows no such 3-D Secure authentication."


# --- the BIN table ----------------------------------------------------------------------------


@functools.cache
def bin_ranges() -> dict[str, BinInfo]:
    """The shipped BIN table by prefix, read once per process."""
    table: dict[str, BinInfo] = {}
    with BIN_RANGES_FILE.open(encoding="utf-8", newline="") as handle:
        rows = (line for line in handle if line.strip() and not line.startswith("#"))
        reader = csv.DictReader(rows)
        if tuple(reader.fieldnames or ()) != BIN_COLUMNS:
            raise ValueError(f"{BIN_RANGES_FILE.name}: the columns must be {BIN_COLUMNS}")
        for row in reader:
            info = BinInfo(
                bin=row["prefix"],
                brand=row["brand"],
                funding=row["funding"],
                product=row["product"],
                issuer_country=row["issuer_country"],
            )
            prefix = info.bin
            if not (
                prefix.isascii()
                and prefix.isdigit()
                and len(prefix) in PREFIX_LENGTHS
                and info.brand in BRANDS
                and info.funding in FUNDINGS
                and info.product in PRODUCTS
                and len(info.issuer_country) == 2
                and info.issuer_country.isupper()
            ):
                raise ValueError(f"{BIN_RANGES_FILE.name}: bad range {row}")
            if prefix in table:
                raise ValueError(f"{BIN_RANGES_FILE.name}: {prefix} appears twice")
            table[prefix] = info
    return table


def bin_info(digits: str) -> BinInfo | None:
    """The table's range for a card number or BIN (longest prefix first), or None."""
    table = bin_ranges()
    for length in PREFIX_LENGTHS:
        if len(digits) >= length and (info := table.get(digits[:length])):
            return info
    return None


# --- the processor ----------------------------------------------------------------------------


def _new_reference(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def _today() -> date:
    return business_date(timezone.now())


def _result(row: SandboxCharge) -> ChargeResult:
    return ChargeResult(
        reference=row.reference,
        idempotency_key=row.idempotency_key,
        status=row.status,
        amount_cents=row.amount_cents,
        decline_code=row.decline_code,
    )


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _check_call(*, amount_cents: int, idempotency_key: str | None = None) -> None:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise InvalidRequest("amount_cents must be a positive integer.")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 120:
        raise InvalidRequest("An idempotency key of 1 to 120 characters is required.")


class SandboxProcessor:
    """``apps.payments.processor.CardProcessor`` for development and tests."""

    def _network(self) -> None:
        # The simulated round trip: callers must not hold a transaction open across it.
        latency = settings.SANDBOX_PROCESSOR_LATENCY_MS
        if latency > 0:
            time.sleep(latency / 1000)

    def _card(self, *, token: str, livemode: bool) -> SandboxCard:
        try:
            return SandboxCard.objects.get(token=token, livemode=livemode)
        except SandboxCard.DoesNotExist:
            raise UnknownToken() from None

    def tokenise(
        self, *, number: str, exp_month: int, exp_year: int, cvc: str, livemode: bool
    ) -> CardDetails:
        self._network()
        digits = normalise_number(str(number))
        if number_refusal(digits) is not None:
            raise InvalidCard(_("This card number is not valid."), field="number")
        month, year = _as_int(exp_month), _as_int(exp_year)
        if year is not None and 0 <= year < 100:
            year += 2000  # "28" on the card means 2028
        today = _today()
        if month is None or year is None or not 1 <= month <= 12 or year > today.year + 50:
            raise InvalidCard(_("The expiry date is not valid."), field="expiry")
        if card_valid_through(exp_month=month, exp_year=year) < today:
            raise InvalidCard(_("This card has expired."), field="expiry")
        cvc = str(cvc).strip()
        if not (cvc.isascii() and cvc.isdigit() and len(cvc) in (3, 4)):
            raise InvalidCard(_("The security code (CVC) must be 3 or 4 digits."), field="cvc")

        info = bin_info(digits) or BinInfo(
            bin="",
            brand=brand_from_number(digits),
            funding="credit",
            product="",
            issuer_country="",  # unknown: the card rules refuse it
        )
        # PCI DSS lets the first 8 digits be kept with the last 4 only on 16+ digit numbers.
        card = SandboxCard.objects.create(
            token=_new_reference("tok"),
            livemode=livemode,
            bin=digits[:8] if len(digits) >= 16 else digits[:6],
            last4=digits[-4:],
            scenario=SCENARIOS.get(digits, SUCCESS),
            exp_month=month,
            exp_year=year,
            created_at=timezone.now(),
        )
        return CardDetails(
            token=card.token,
            bin=card.bin,
            last4=card.last4,
            brand=info.brand,
            funding=info.funding,
            product=info.product,
            issuer_country=info.issuer_country,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            fingerprint=salted_hmac("sandbox-card-fingerprint", digits).hexdigest()[:32],
        )

    def bin_lookup(self, *, bin: str) -> BinInfo | None:
        self._network()
        if not (bin.isascii() and bin.isdigit() and len(bin) >= 6):
            return None
        info = bin_info(bin)
        return None if info is None else dataclasses.replace(info, bin=bin)

    def three_ds_start(
        self, *, token: str, amount_cents: int, return_url: str, livemode: bool
    ) -> ThreeDSStart:
        self._network()
        _check_call(amount_cents=amount_cents)
        card = self._card(token=token, livemode=livemode)
        challenge = card.scenario == CHALLENGE
        if len(return_url) > 1000 or (challenge and not return_url):
            raise InvalidRequest("A return URL of at most 1000 characters is required.")
        now = timezone.now()
        authentication = SandboxThreeDS.objects.create(
            reference=_new_reference("3ds"),
            card=card,
            amount_cents=amount_cents,
            return_url=return_url,
            status=CHALLENGE if challenge else APPROVED,
            created_at=now,
            completed_at=None if challenge else now,
        )
        challenge_url = ""
        if challenge:
            challenge_url = absolute(
                reverse("payments:sandbox-acs", args=[authentication.reference])
            )
        return ThreeDSStart(
            reference=authentication.reference,
            status=three_ds_status(authentication),
            challenge_url=challenge_url,
        )

    def three_ds_result(self, *, reference: str) -> str:
        self._network()
        return three_ds_status(three_ds_get(reference=reference))

    def _decision(
        self,
        *,
        card: SandboxCard,
        three_ds_reference: str,
        merchant_initiated: bool,
        amount_cents: int,
    ) -> str:
        """The decline code, or "" to accept. A customer-initiated charge needs a 3-D Secure
        authentication of that card for at least its amount; a detached card is refused."""
        if card.scenario.startswith(DETACHED_PREFIX):
            return TOKEN_DETACHED
        if not merchant_initiated:
            authenticated = bool(three_ds_reference) and (
                SandboxThreeDS.objects.filter(
                    reference=three_ds_reference,
                    card=card,
                    status=APPROVED,
                    amount_cents__gte=amount_cents,
                ).exists()
            )
            if not authenticated:
                return "authentication_required"
        if card_valid_through(exp_month=card.exp_month, exp_year=card.exp_year) < _today():
            return "expired_card"
        if card.scenario in (DO_NOT_HONOR, INSUFFICIENT_FUNDS):
            return card.scenario
        if card.scenario == LATER_INSUFFICIENT_FUNDS and merchant_initiated:
            return INSUFFICIENT_FUNDS
        return ""

    def _replay(
        self,
        row: SandboxCharge,
        *,
        kind: str,
        amount_cents: int,
        livemode: bool,
        token: str = "",
        charge_reference: str = "",
    ) -> ChargeResult:
        """The stored answer to a key used before, if the request is the same one."""
        same = (
            row.kind == kind
            and row.amount_cents == amount_cents
            and row.livemode == livemode
            and (row.card.token == token if kind == CHARGE else True)
            and row.charge_reference == charge_reference
        )
        if not same:
            raise ProcessorKeyReused()
        return _result(row)

    def charge(
        self,
        *,
        token: str,
        amount_cents: int,
        idempotency_key: str,
        livemode: bool,
        three_ds_reference: str = "",
        merchant_initiated: bool = False,
    ) -> ChargeResult:
        self._network()
        _check_call(amount_cents=amount_cents, idempotency_key=idempotency_key)
        request = {"kind": CHARGE, "amount_cents": amount_cents, "livemode": livemode}
        stored = (
            SandboxCharge.objects.select_related("card")
            .filter(idempotency_key=idempotency_key)
            .first()
        )
        if stored is not None:
            return self._replay(stored, token=token, **request)
        card = self._card(token=token, livemode=livemode)
        decline_code = self._decision(
            card=card,
            three_ds_reference=three_ds_reference,
            merchant_initiated=merchant_initiated,
            amount_cents=amount_cents,
        )
        try:
            # A savepoint: a racing call with the same key loses on the unique constraint.
            with transaction.atomic():
                row = SandboxCharge.objects.create(
                    reference=_new_reference("ch"),
                    idempotency_key=idempotency_key,
                    livemode=livemode,
                    card=card,
                    kind=CHARGE,
                    amount_cents=amount_cents,
                    status=DECLINED if decline_code else SUCCEEDED,
                    decline_code=decline_code,
                    created_at=timezone.now(),
                )
        except IntegrityError:
            stored = SandboxCharge.objects.select_related("card").get(
                idempotency_key=idempotency_key
            )
            return self._replay(stored, token=token, **request)
        if card.scenario == TIMEOUT and row.status == SUCCEEDED:
            raise ProcessorUnavailable()  # the money moved; the answer got lost
        return _result(row)

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult | None]:
        """The batch endpoint: one round trip, a few statements whatever the batch's size,
        with the same decisions and idempotency as ``charge``."""
        self._network()
        for request in requests:
            _check_call(amount_cents=request.amount_cents, idempotency_key=request.idempotency_key)
        keys = [request.idempotency_key for request in requests]
        stored = self._charges_by_key(keys)
        cards = {
            (card.token, card.livemode): card
            for card in SandboxCard.objects.filter(token__in={r.token for r in requests})
        }
        answers: dict[str, ChargeResult] = {}
        new_rows = []
        for request in requests:
            key = request.idempotency_key
            card = cards.get((request.token, request.livemode))
            if key in stored or key in answers:
                continue
            if card is None:  # refused, nothing stored: the same request fails the same way
                answers[key] = ChargeResult(
                    reference="",
                    idempotency_key=key,
                    status=DECLINED,
                    amount_cents=request.amount_cents,
                    decline_code=UnknownToken.code,
                )
                continue
            decline_code = self._decision(
                card=card,
                three_ds_reference="",
                merchant_initiated=True,
                amount_cents=request.amount_cents,
            )
            new_rows.append(
                SandboxCharge(
                    reference=_new_reference("ch"),
                    idempotency_key=key,
                    livemode=request.livemode,
                    card=card,
                    kind=CHARGE,
                    amount_cents=request.amount_cents,
                    status=DECLINED if decline_code else SUCCEEDED,
                    decline_code=decline_code,
                    created_at=timezone.now(),
                )
            )
        # A racing call with the same key wins on the unique key: its row is the answer.
        SandboxCharge.objects.bulk_create(new_rows, ignore_conflicts=True)
        mine = {row.reference for row in new_rows}
        stored.update(self._charges_by_key([row.idempotency_key for row in new_rows]))
        results: list[ChargeResult | None] = []
        for request in requests:
            key = request.idempotency_key
            if key in answers:
                results.append(answers[key])
                continue
            row = stored[key]
            try:
                result = self._replay(
                    row,
                    kind=CHARGE,
                    token=request.token,
                    amount_cents=request.amount_cents,
                    livemode=request.livemode,
                )
            except ProcessorKeyReused as error:  # refused, like the single call
                result = ChargeResult(
                    reference="",
                    idempotency_key=key,
                    status=DECLINED,
                    amount_cents=request.amount_cents,
                    decline_code=error.code,
                )
            lost = row.reference in mine and row.card.scenario == TIMEOUT and result.succeeded
            results.append(None if lost else result)  # the money moved; the answer got lost
        return results

    def _charges_by_key(self, keys: list[str]) -> dict[str, SandboxCharge]:
        if not keys:
            return {}
        rows = SandboxCharge.objects.select_related("card").filter(idempotency_key__in=keys)
        return {row.idempotency_key: row for row in rows}

    def refund(
        self, *, charge_reference: str, amount_cents: int, idempotency_key: str, livemode: bool
    ) -> ChargeResult:
        self._network()
        _check_call(amount_cents=amount_cents, idempotency_key=idempotency_key)
        request = {
            "kind": REFUND,
            "amount_cents": amount_cents,
            "livemode": livemode,
            "charge_reference": charge_reference,
        }
        with transaction.atomic():
            # The charge's row lock serialises its refunds: together they never exceed it.
            charge = (
                SandboxCharge.objects.select_for_update()
                .filter(reference=charge_reference, kind=CHARGE, livemode=livemode)
                .first()
            )
            if charge is None:
                raise UnknownCharge("The processor knows no such charge in this mode.")
            stored = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
            if stored is not None:
                return self._replay(stored, **request)
            refunded = SandboxCharge.objects.filter(
                kind=REFUND, charge_reference=charge_reference, status=SUCCEEDED
            ).aggregate(total=Sum("amount_cents"))["total"]
            left = charge.amount_cents - (refunded or 0) if charge.status == SUCCEEDED else 0
            decline_code = "" if amount_cents <= left else "amount_exceeds_charge"
            try:
                with transaction.atomic():
                    row = SandboxCharge.objects.create(
                        reference=_new_reference("re"),
                        idempotency_key=idempotency_key,
                        livemode=livemode,
                        card_id=charge.card_id,
                        kind=REFUND,
                        amount_cents=amount_cents,
                        status=DECLINED if decline_code else SUCCEEDED,
                        decline_code=decline_code,
                        charge_reference=charge_reference,
                        created_at=timezone.now(),
                    )
            except IntegrityError:  # the key was used for another charge's refund meanwhile
                stored = SandboxCharge.objects.get(idempotency_key=idempotency_key)
                return self._replay(stored, **request)
        if row.status == SUCCEEDED and charge.card.scenario == TIMEOUT:
            raise ProcessorUnavailable()  # the money moved back; the answer got lost
        return _result(row)

    def detach(self, *, token: str, livemode: bool) -> None:
        self._network()
        card = self._card(token=token, livemode=livemode)
        # Conditional: detaching twice (or two calls at once) changes the row once.
        SandboxCard.objects.filter(pk=card.pk).exclude(scenario__startswith=DETACHED_PREFIX).update(
            scenario=DETACHED_PREFIX + card.scenario
        )

    def charge_status(self, *, idempotency_key: str) -> ChargeResult:
        self._network()
        stored = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        if stored is None:
            raise UnknownCharge("No charge or refund was made with this idempotency key.")
        return _result(stored)


# --- the ACS (3-D Secure challenge) -----------------------------------------------------------


def three_ds_status(authentication: SandboxThreeDS) -> str:
    """The interface's name for a stored status: challenge, authenticated or failed."""
    return AUTHENTICATED if authentication.status == APPROVED else authentication.status


def three_ds_get(*, reference: str) -> SandboxThreeDS:
    """An authentication with its card, or ``UnknownAuthentication``."""
    authentication = (
        SandboxThreeDS.objects.select_related("card").filter(reference=reference).first()
    )
    if authentication is None:
        raise UnknownAuthentication()
    return authentication


def three_ds_complete(*, reference: str, approved: bool, now: datetime) -> SandboxThreeDS:
    """The customer's answer on the ACS page. Only the first answer counts: the update is
    conditional on the challenge still waiting, so a second answer changes nothing."""
    SandboxThreeDS.objects.filter(reference=reference, status=CHALLENGE).update(
        status=APPROVED if approved else FAILED, completed_at=now
    )
    return three_ds_get(reference=reference)


def three_ds_return_url(authentication: SandboxThreeDS) -> str:
    """Where the ACS sends the browser back: the caller's return URL with
    ``threeds=<reference>`` in its query (keeping what is there)."""
    parts = urlsplit(authentication.return_url)
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name != "threeds"
    ]
    query.append(("threeds", authentication.reference))
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- settlement -------------------------------------------------------------------------------


def write_settlement_report(*, report_date: date, livemode: bool) -> Path:
    """Deliver the day's settlement file: the succeeded charges (positive) and refunds
    (negative) made on that Europe/Paris day. Writing a day again gives the same file."""
    start = datetime.combine(report_date, datetime.min.time(), tzinfo=BUSINESS_TZ)
    end = datetime.combine(report_date + timedelta(days=1), datetime.min.time(), tzinfo=BUSINESS_TZ)
    rows = SandboxCharge.objects.filter(
        livemode=livemode, status=SUCCEEDED, created_at__gte=start, created_at__lt=end
    ).order_by("created_at", "id")
    lines = [
        SettlementLine(
            processor_reference=row.reference,
            cents=row.amount_cents if row.kind == CHARGE else -row.amount_cents,
            occurred_at=row.created_at.astimezone(BUSINESS_TZ),
        )
        for row in rows
    ]
    return DirectorySettlementReports().write(
        report_date=report_date, livemode=livemode, lines=lines
    )
