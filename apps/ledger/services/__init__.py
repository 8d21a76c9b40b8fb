"""The ledger's use cases; other apps post money through these functions only."""

from .payouts import (
    PayoutRunClosed,
    payout_fail,
    payout_mark_paid,
    payouts_run,
)
from .postings import Posted, account_close, posting_create, posting_reverse, postings_create
from .reconciliation import mismatch_resolve, reconciliation_run

__all__ = [
    "PayoutRunClosed",
    "Posted",
    "account_close",
    "mismatch_resolve",
    "payout_fail",
    "payout_mark_paid",
    "payouts_run",
    "posting_create",
    "posting_reverse",
    "postings_create",
    "reconciliation_run",
]
