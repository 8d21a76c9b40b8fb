"""The ledger's invariants, checked by SQL over everything written (``check_ledger``).

Each check returns the rows that break it, so a violation names what to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

# Each check: (name, SQL returning one row per violation, a description of a row).
# %(mode)s is replaced by a filter on livemode (or TRUE for both modes).
CHECKS: list[tuple[str, str]] = [
    (
        "postings balanced, in one currency, with two legs or more",
        """
        SELECT p.id, count(l.id), count(DISTINCT l.amount_currency), coalesce(sum(l.amount), 0)
          FROM ledger_posting p LEFT JOIN ledger_leg l ON l.posting_id = p.id
         WHERE %(posting_mode)s
         GROUP BY p.id
        HAVING count(l.id) < 2 OR count(DISTINCT l.amount_currency) > 1
            OR coalesce(sum(l.amount), 0) <> 0
        """,
    ),
    (
        "all legs sum to zero per mode and currency",
        """
        SELECT a.livemode, l.amount_currency, sum(l.amount)
          FROM ledger_leg l JOIN ledger_account a ON a.id = l.account_id
         WHERE %(account_mode)s
         GROUP BY a.livemode, l.amount_currency
        HAVING sum(l.amount) <> 0
        """,
    ),
    (
        "each leg in the mode and currency of its account and posting",
        """
        SELECT l.id, a.key
          FROM ledger_leg l
          JOIN ledger_account a ON a.id = l.account_id
          JOIN ledger_posting p ON p.id = l.posting_id
         WHERE %(account_mode)s
           AND (a.livemode <> p.livemode OR a.balance_currency <> l.amount_currency)
        """,
    ),
    (
        "stored balance equals the sum of the account's legs",
        """
        SELECT a.key, a.balance, coalesce(s.total, 0)
          FROM ledger_account a
          LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_leg GROUP BY account_id) s
            ON s.account_id = a.id
         WHERE %(account_mode)s AND a.balance <> coalesce(s.total, 0)
        """,
    ),
    (
        "each leg's balance_after is the running sum of its account's legs in time order",
        """
        SELECT r.id, r.key, r.balance_after, r.running
          FROM (SELECT l.id, a.key, l.balance_after,
                       sum(l.amount) OVER (PARTITION BY l.account_id
                                           ORDER BY l.posted_at, l.id) AS running
                  FROM ledger_leg l JOIN ledger_account a ON a.id = l.account_id
                 WHERE %(account_mode)s) r
         WHERE r.balance_after <> r.running
        """,
    ),
    (
        "each payout posted once when made, and once more when paid or failed",
        """
        SELECT o.public_id, o.status,
               count(*) FILTER (WHERE p.kind = 'payout_sent'),
               count(*) FILTER (WHERE p.kind = 'payout_paid'),
               count(*) FILTER (WHERE p.kind = 'payout_failed')
          FROM ledger_payout o
          LEFT JOIN ledger_posting p ON p.source = 'payout' AND p.reference = o.public_id
         WHERE %(payout_mode)s
         GROUP BY o.id
        HAVING count(*) FILTER (WHERE p.kind = 'payout_sent') <> 1
            OR count(*) FILTER (WHERE p.kind = 'payout_paid')
               <> (CASE WHEN o.status = 'paid' THEN 1 ELSE 0 END)
            OR count(*) FILTER (WHERE p.kind = 'payout_failed')
               <> (CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END)
        """,
    ),
    (
        "no payout exceeds the merchant's available balance when it was made",
        # Available just before the payout's leg: the balance before it (credit-normal, so
        # negated) minus the credits posted within the settlement delay before it.
        """
        SELECT o.public_id, o.amount, r.available
          FROM ledger_payout o
          JOIN ledger_posting p
            ON p.source = 'payout' AND p.reference = o.public_id AND p.kind = 'payout_sent'
          JOIN ledger_leg l ON l.posting_id = p.id AND l.amount > 0
          CROSS JOIN LATERAL (
              SELECT -(l.balance_after - l.amount) - least(
                         greatest(-(l.balance_after - l.amount), 0),
                         coalesce((SELECT -sum(c.amount) FROM ledger_leg c
                                     JOIN ledger_posting cp ON cp.id = c.posting_id
                                    WHERE c.account_id = l.account_id AND c.amount < 0
                                      AND cp.kind = 'payment_captured'
                                      AND c.posted_at > l.posted_at - make_interval(
                                                            days => o.settlement_delay_days)
                                      AND c.posted_at < l.posted_at), 0)) AS available
          ) r
         WHERE %(payout_mode)s AND (o.amount > r.available OR o.amount <> l.amount)
        """,
    ),
]


@dataclass
class AuditReport:
    counts: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[tuple]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def _mode_filters(livemode: bool | None) -> dict[str, str]:
    if livemode is None:
        return {"posting_mode": "TRUE", "account_mode": "TRUE", "payout_mode": "TRUE"}
    value = "TRUE" if livemode else "FALSE"
    return {
        "posting_mode": f"p.livemode = {value}",
        "account_mode": f"a.livemode = {value}",
        "payout_mode": f"o.livemode = {value}",
    }


def ledger_audit(*, livemode: bool | None = None, limit: int = 20) -> AuditReport:
    """Run every check (in one mode, or both) and count what was checked."""
    filters = _mode_filters(livemode)
    report = AuditReport()
    with connection.cursor() as cursor:
        for table, alias in (
            ("ledger_posting", "p"),
            ("ledger_account", "a"),
            ("ledger_payout", "o"),
        ):
            mode = filters[{"p": "posting_mode", "a": "account_mode", "o": "payout_mode"}[alias]]
            cursor.execute(f"SELECT count(*) FROM {table} {alias} WHERE {mode}")  # noqa: S608
            report.counts[table.removeprefix("ledger_") + "s"] = cursor.fetchone()[0]
        legs_sql = "SELECT count(*) FROM ledger_leg l JOIN ledger_account a ON a.id = l.account_id"
        cursor.execute(f"{legs_sql} WHERE {filters['account_mode']}")
        report.counts["legs"] = cursor.fetchone()[0]
        for name, sql in CHECKS:
            cursor.execute(f"{sql % filters} LIMIT {int(limit)}")
            rows = cursor.fetchall()
            if rows:
                report.violations[name] = rows
    return report
