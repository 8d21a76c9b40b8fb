"""Our own reading of a customer's bank transactions: income, fixed charges, existing credit,
overdraft, gambling and what is left to repay a new credit with.

Pure: no ORM, no clock, no I/O; integer cents throughout (no float anywhere).

The rules, in the order they apply:

1. The window. Only whole calendar months count: a month is in the window when its first day
   is on or after ``period_start`` (the first day the aggregator covers) and its last day is
   before ``today`` (today's transactions may still be coming in). Every monthly figure is the
   window's total divided by the number of months in it, rounded half up. When the data
   covers no whole month, the whole period counts as one month (a thin sample, said by
   ``months_analysed == 0``).
2. The class of a transaction comes from the aggregator's category when it is one we know
   (``CATEGORY_CLASSES``), else from keywords in its label (``*_KEYWORDS``), compared without
   accents, case or punctuation and as whole words. A keyword class applies to debits only,
   except income, which applies to credits only. Gambling wins over credit, credit over fixed
   charges.
3. Income: credits classed as income (salary, benefits, pensions, fees of a self-employed
   person), plus recurring credits: a credit of at least ``RECURRING_CREDIT_MIN_CENTS`` whose
   label (digits left out) comes back in at least two months of the window. Credits from
   gambling operators (winnings) are never income.
4. Fixed charges (rent, energy, water, insurance, phone and internet, subscriptions, taxes)
   and credit repayments (loans, revolving credit, other buy-now-pay-later) are the monthly
   averages of those debits, as positive amounts. Gambling is the monthly average of debits
   to betting and lottery operators (gross: winnings are not netted).
5. Overdraft days: days of the window whose end-of-day balance is below zero. The balance is
   each transaction's ``balance_after_cents`` when the aggregator gives it, else the running
   sum from ``opening_balance_cents`` (the balance before the first transaction).
6. Living allowance: ``LIVING_ALLOWANCE_PER_ADULT_CENTS`` (500 EUR) per adult of the
   household, a flat amount standing for food, transport and everyday spending.
7. Repayment capacity = income - fixed charges - credit repayments - living allowance (may be
   negative). Gambling is not taken off: it is discretionary and shows as a flag instead.
8. Debt to income = credit repayments / income, in basis points (rounded down); None without
   income.
9. Flags (stable codes, in this order):
   - ``no_income``: no income found in the window;
   - ``irregular_income``: income found, but a month of the window differs from the monthly
     average by more than ``INCOME_TOLERANCE_BPS`` (20 %);
   - ``frequent_overdraft``: at least ``FREQUENT_OVERDRAFT_DAYS_PER_MONTH`` (5) overdraft
     days per month of the window on average;
   - ``heavy_existing_credit``: credit repayments take at least ``HEAVY_CREDIT_BPS`` (35 %, the
     French HCSF debt-service ceiling) of income, or there are repayments and no income;
   - ``gambling``: gambling reaches the smaller of ``GAMBLING_FLAG_CENTS`` (100 EUR) and
     ``GAMBLING_FLAG_BPS`` (5 %) of income per month (and is not zero).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from apps.common.dates import add_months, days_in_month
from apps.common.money import round_half_up_div

LIVING_ALLOWANCE_PER_ADULT_CENTS = 500_00
RECURRING_CREDIT_MIN_CENTS = 50_00
INCOME_TOLERANCE_BPS = 2_000
FREQUENT_OVERDRAFT_DAYS_PER_MONTH = 5
HEAVY_CREDIT_BPS = 3_500
GAMBLING_FLAG_CENTS = 100_00
GAMBLING_FLAG_BPS = 500
BPS = 10_000

# The classes a transaction may fall in.
INCOME = "income"
FIXED = "fixed"
CREDIT = "credit"
GAMBLING = "gambling"
OTHER = "other"

# Flags, stable codes read by the decision.
FLAG_NO_INCOME = "no_income"
FLAG_IRREGULAR_INCOME = "irregular_income"
FLAG_FREQUENT_OVERDRAFT = "frequent_overdraft"
FLAG_HEAVY_EXISTING_CREDIT = "heavy_existing_credit"
FLAG_GAMBLING = "gambling"

# Aggregators' categories (normalised like labels) and our class for them. A category not
# listed says nothing: the label decides.
CATEGORY_CLASSES: dict[str, str] = {
    "SALARY": INCOME,
    "SALARIES": INCOME,
    "INCOME": INCOME,
    "BENEFITS": INCOME,
    "SOCIAL BENEFITS": INCOME,
    "PENSION": INCOME,
    "PENSIONS": INCOME,
    "RETIREMENT": INCOME,
    "UNEMPLOYMENT": INCOME,
    "RENT": FIXED,
    "HOUSING": FIXED,
    "UTILITIES": FIXED,
    "ENERGY": FIXED,
    "WATER": FIXED,
    "INSURANCE": FIXED,
    "TELECOM": FIXED,
    "PHONE": FIXED,
    "INTERNET": FIXED,
    "SUBSCRIPTION": FIXED,
    "SUBSCRIPTIONS": FIXED,
    "TAXES": FIXED,
    "LOAN": CREDIT,
    "LOANS": CREDIT,
    "LOAN REPAYMENT": CREDIT,
    "CREDIT": CREDIT,
    "CONSUMER CREDIT": CREDIT,
    "MORTGAGE": CREDIT,
    "BNPL": CREDIT,
    "GAMBLING": GAMBLING,
    "BETTING": GAMBLING,
    "LOTTERY": GAMBLING,
}

INCOME_KEYWORDS = (
    "SALAIRE",
    "SALAIRES",
    "PAIE",
    "PAYE",
    "TRAITEMENT",
    "REMUNERATION",
    "HONORAIRES",
    "CAF",
    "ALLOCATION",
    "ALLOCATIONS",
    "POLE EMPLOI",
    "FRANCE TRAVAIL",
    "PENSION",
    "RETRAITE",
    "CARSAT",
    "AGIRC",
    "ARRCO",
    "RSA",
    "AAH",
    "PRIME D ACTIVITE",
)
FIXED_KEYWORDS = (
    "LOYER",
    "EDF",
    "ENGIE",
    "GDF",
    "TOTALENERGIES",
    "TOTAL ENERGIES",
    "VEOLIA",
    "SUEZ",
    "EAU",
    "ASSURANCE",
    "ASSURANCES",
    "MUTUELLE",
    "MAIF",
    "MACIF",
    "MAAF",
    "MATMUT",
    "GMF",
    "AXA",
    "ALLIANZ",
    "ORANGE",
    "SFR",
    "BOUYGUES",
    "FREE",
    "SOSH",
    "NETFLIX",
    "SPOTIFY",
    "DEEZER",
    "CANAL",
    "DISNEY",
    "AMAZON PRIME",
    "ABONNEMENT",
    "NAVIGO",
    "IMPOT",
    "IMPOTS",
    "TAXE FONCIERE",
    "TAXE HABITATION",
    "DGFIP",
    "URSSAF",
)
CREDIT_KEYWORDS = (
    "ECHEANCE PRET",
    "ECH PRET",
    "REMB PRET",
    "PRET IMMO",
    "PRET IMMOBILIER",
    "PRET PERSO",
    "PRET PERSONNEL",
    "CREDIT IMMOBILIER",
    "CREDIT RENOUVELABLE",
    "CREDIT CONSO",
    "CETELEM",
    "COFIDIS",
    "SOFINCO",
    "FRANFINANCE",
    "FINANCO",
    "YOUNITED",
    "CARREFOUR BANQUE",
    "ONEY",
    "FLOA",
    "ALMA",
    "KLARNA",
    "SCALAPAY",
    "PAYPAL 4X",
)
GAMBLING_KEYWORDS = (
    "FDJ",
    "FRANCAISE DES JEUX",
    "PMU",
    "BETCLIC",
    "WINAMAX",
    "UNIBET",
    "PARIONS SPORT",
    "PARIONSSPORT",
    "ZEBET",
    "NETBET",
    "BWIN",
    "POKERSTARS",
    "PARTOUCHE",
    "CASINO BARRIERE",
)


@dataclass(frozen=True)
class Transaction:
    """One booked transaction: ``amount_cents`` is negative for a debit. ``balance_after_cents``
    is the account balance just after it, when the aggregator gives one."""

    booked_on: date
    amount_cents: int
    label: str
    category: str | None = None
    balance_after_cents: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "booked_on": self.booked_on.isoformat(),
            "amount_cents": self.amount_cents,
            "label": self.label,
            "category": self.category,
            "balance_after_cents": self.balance_after_cents,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transaction:
        balance = data.get("balance_after_cents")
        return cls(
            booked_on=date.fromisoformat(data["booked_on"]),
            amount_cents=int(data["amount_cents"]),
            label=str(data["label"]),
            category=data.get("category"),
            balance_after_cents=None if balance is None else int(balance),
        )


@dataclass(frozen=True)
class BankAnalysis:
    """What the transactions say, per month (cents) over the whole months analysed."""

    window_start: date
    window_end: date
    months_analysed: int
    monthly_income_cents: int
    income_by_month_cents: tuple[int, ...]
    income_regular: bool
    fixed_charges_cents: int
    credit_repayments_cents: int
    gambling_cents: int
    overdraft_days: int
    adults: int
    living_allowance_cents: int
    repayment_capacity_cents: int
    debt_to_income_bps: int | None
    flags: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        data["income_by_month_cents"] = list(self.income_by_month_cents)
        data["flags"] = list(self.flags)
        return data


def normalise_text(text: str) -> str:
    """Upper case, accents dropped, anything but letters and digits turned to single spaces:
    "Prélèvement  Échéance-Prêt" gives "PRELEVEMENT ECHEANCE PRET"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.split(r"[^0-9A-Z]+", plain.upper())).strip()


def _has_keyword(label: str, keywords: tuple[str, ...]) -> bool:
    padded = f" {label} "
    return any(f" {keyword} " in padded for keyword in keywords)


def classify(transaction: Transaction) -> str:
    """The class of one transaction (rule 2): income, fixed, credit, gambling or other."""
    if transaction.category:
        known = CATEGORY_CLASSES.get(normalise_text(transaction.category))
        if known is not None:
            return known
    label = normalise_text(transaction.label)
    if _has_keyword(label, GAMBLING_KEYWORDS):
        return GAMBLING
    if transaction.amount_cents > 0:
        return INCOME if _has_keyword(label, INCOME_KEYWORDS) else OTHER
    if _has_keyword(label, CREDIT_KEYWORDS):
        return CREDIT
    if _has_keyword(label, FIXED_KEYWORDS):
        return FIXED
    return OTHER


def _month_key(day: date) -> tuple[int, int]:
    return (day.year, day.month)


def analysis_window(*, period_start: date, today: date) -> tuple[date, date, int]:
    """The whole months between ``period_start`` and ``today`` (rule 1): first day, last day
    and number of months; ``(period_start, today, 0)`` when there is none."""
    first = period_start if period_start.day == 1 else add_months(period_start.replace(day=1), 1)
    months = 0
    while True:
        month_start = add_months(first, months)
        month_end = month_start.replace(day=days_in_month(month_start.year, month_start.month))
        if month_end >= today:
            break
        months += 1
    if months == 0:
        return period_start, today, 0
    last_month = add_months(first, months - 1)
    return first, last_month.replace(day=days_in_month(last_month.year, last_month.month)), months


def _payer(label: str) -> str:
    """A credit's label without its digits (references, dates): what stays the same from one
    month to the next for one payer."""
    return " ".join(re.sub(r"[0-9]+", " ", normalise_text(label)).split())


def _recurring_payers(credits: list[Transaction]) -> set[str]:
    """Rule 3: payers of credits of at least ``RECURRING_CREDIT_MIN_CENTS`` in two months or
    more."""
    months_by_payer: dict[str, set[tuple[int, int]]] = {}
    for transaction in credits:
        payer = _payer(transaction.label)
        if transaction.amount_cents >= RECURRING_CREDIT_MIN_CENTS and payer:
            months_by_payer.setdefault(payer, set()).add(_month_key(transaction.booked_on))
    return {payer for payer, months in months_by_payer.items() if len(months) >= 2}


def _is_recurring(transaction: Transaction, recurring: set[str]) -> bool:
    return (
        transaction.amount_cents >= RECURRING_CREDIT_MIN_CENTS
        and _payer(transaction.label) in recurring
    )


def _overdraft_days(
    ordered: list[Transaction],
    *,
    opening_balance_cents: int | None,
    window_start: date,
    window_end: date,
) -> int:
    """Rule 5: days of the window ending with a negative balance. With an opening balance the
    running sum decides; otherwise the balances the aggregator reports (the balance before
    the first transaction is its balance after, less its amount)."""
    reported = opening_balance_cents is None
    if opening_balance_cents is not None:
        balance = opening_balance_cents
    elif not ordered:
        return 0
    elif ordered[0].balance_after_cents is not None:
        balance = ordered[0].balance_after_cents - ordered[0].amount_cents
    else:
        raise ValueError("overdraft days need balances or an opening balance")
    current = balance
    end_of_day: dict[date, int] = {}
    for transaction in ordered:
        if reported and transaction.balance_after_cents is not None:
            balance = transaction.balance_after_cents
        else:
            balance += transaction.amount_cents
        end_of_day[transaction.booked_on] = balance
    day = min(window_start, ordered[0].booked_on) if ordered else window_start
    days = 0
    while day <= window_end:
        current = end_of_day.get(day, current)
        if day >= window_start and current < 0:
            days += 1
        day += timedelta(days=1)
    return days


def bank_analyse(
    transactions: list[Transaction] | tuple[Transaction, ...],
    *,
    today: date,
    period_start: date | None = None,
    opening_balance_cents: int | None = None,
    adults: int = 1,
) -> BankAnalysis:
    """Analyse the transactions of the period ``period_start`` (default: the first booking
    day) to ``today``, following the module's rules. Transactions outside the period are left
    out; within a day they are taken in the order given (the aggregator's order).
    ``opening_balance_cents`` is the balance at the start of the period; without it the
    transactions' ``balance_after_cents`` give the balance (rule 5). ``adults`` counts the
    household's adults for the living allowance (rule 6)."""
    if adults < 1:
        raise ValueError("a household has at least one adult")
    for transaction in transactions:
        if isinstance(transaction.amount_cents, bool) or not isinstance(
            transaction.amount_cents, int
        ):
            raise TypeError("amounts are integer cents")
    ordered = sorted((t for t in transactions if t.booked_on <= today), key=lambda t: t.booked_on)
    if period_start is None:
        period_start = ordered[0].booked_on if ordered else today
    ordered = [t for t in ordered if t.booked_on >= period_start]
    window_start, window_end, months = analysis_window(period_start=period_start, today=today)
    divisor = max(months, 1)
    in_window = [t for t in ordered if window_start <= t.booked_on <= window_end]

    credits = [t for t in in_window if t.amount_cents > 0]
    recurring = _recurring_payers([t for t in credits if classify(t) != GAMBLING])
    totals = {INCOME: 0, FIXED: 0, CREDIT: 0, GAMBLING: 0}
    income_by_month: dict[tuple[int, int], int] = {}
    for transaction in in_window:
        kind = classify(transaction)
        if transaction.amount_cents > 0:
            if kind == INCOME or (kind == OTHER and _is_recurring(transaction, recurring)):
                totals[INCOME] += transaction.amount_cents
                key = _month_key(transaction.booked_on)
                income_by_month[key] = income_by_month.get(key, 0) + transaction.amount_cents
        elif kind in (FIXED, CREDIT, GAMBLING):
            totals[kind] -= transaction.amount_cents

    income = round_half_up_div(totals[INCOME], divisor)
    fixed = round_half_up_div(totals[FIXED], divisor)
    credit = round_half_up_div(totals[CREDIT], divisor)
    gambling = round_half_up_div(totals[GAMBLING], divisor)
    allowance = LIVING_ALLOWANCE_PER_ADULT_CENTS * adults
    capacity = income - fixed - credit - allowance
    debt_to_income = None if income == 0 else credit * BPS // income

    month_keys = [_month_key(add_months(window_start, i)) for i in range(months)]
    by_month = tuple(income_by_month.get(key, 0) for key in month_keys) or (totals[INCOME],)
    regular = income > 0 and all(
        abs(amount - income) * BPS <= INCOME_TOLERANCE_BPS * income for amount in by_month
    )
    overdraft = _overdraft_days(
        ordered,
        opening_balance_cents=opening_balance_cents,
        window_start=window_start,
        window_end=window_end,
    )

    flags = []
    if income == 0:
        flags.append(FLAG_NO_INCOME)
    elif not regular:
        flags.append(FLAG_IRREGULAR_INCOME)
    if overdraft >= FREQUENT_OVERDRAFT_DAYS_PER_MONTH * divisor:
        flags.append(FLAG_FREQUENT_OVERDRAFT)
    if (income == 0 and credit > 0) or (
        debt_to_income is not None and debt_to_income >= HEAVY_CREDIT_BPS
    ):
        flags.append(FLAG_HEAVY_EXISTING_CREDIT)
    if gambling > 0 and gambling * BPS >= min(
        GAMBLING_FLAG_CENTS * BPS, GAMBLING_FLAG_BPS * income
    ):
        flags.append(FLAG_GAMBLING)

    return BankAnalysis(
        window_start=window_start,
        window_end=window_end,
        months_analysed=months,
        monthly_income_cents=income,
        income_by_month_cents=by_month,
        income_regular=regular,
        fixed_charges_cents=fixed,
        credit_repayments_cents=credit,
        gambling_cents=gambling,
        overdraft_days=overdraft,
        adults=adults,
        living_allowance_cents=allowance,
        repayment_capacity_cents=capacity,
        debt_to_income_bps=debt_to_income,
        flags=tuple(flags),
    )
