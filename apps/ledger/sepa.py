"""SEPA credit transfer files (pain.001.001.03) for payout runs, built and schema-validated by
sepaxml (it checks the file against the official XSD it ships)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sepaxml import SepaTransfer

from apps.common.money import CURRENCY


@dataclass(frozen=True)
class Debtor:
    """Tranche's own bank account, which the transfers leave from."""

    name: str
    iban: str
    bic: str


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str  # at most 35 characters; the bank returns it with a rejection
    creditor_name: str
    iban: str
    bic: str
    cents: int
    description: str


def credit_transfer_file(
    *, debtor: Debtor, transfers: list[Transfer], execution_date: date
) -> tuple[str, bytes]:
    """The file and its message id; raises sepaxml's ValidationError if the XSD refuses it."""
    document = SepaTransfer(
        {
            "name": debtor.name,
            "IBAN": debtor.iban,
            "BIC": debtor.bic,
            "batch": True,
            "currency": CURRENCY,
        },
        schema="pain.001.001.03",
    )
    for transfer in transfers:
        payment = {
            "name": transfer.creditor_name,
            "IBAN": transfer.iban,
            "amount": transfer.cents,
            "execution_date": execution_date,
            "description": transfer.description,
            "endtoend_id": transfer.end_to_end_id,
        }
        if transfer.bic:
            payment["BIC"] = transfer.bic
        document.add_payment(payment)
    return document.msg_id, document.export(validate=True)
