"""A payment's link sent to its customer by SMS, at the merchant's request."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from apps.common.errors import DomainError
from apps.common.money import display_eur, to_cents
from apps.payments import links
from apps.payments.models import (
    PAYABLE_STATES,
    Payment,
    PaymentEvent,
)
from apps.payments.services.payments import PaymentStateConflict, invalid
from apps.payments.services.transitions import payment_event_record, payment_lock
from apps.verification.errors import InvalidPhone
from apps.verification.phones import phone_e164
from apps.verification.services import sms_send


class SmsNotEnabled(DomainError):
    code = "sms_not_enabled"
    http_status = 403
    default_message = "Payment links by SMS are not enabled for this merchant account."


@transaction.atomic
def payment_send_sms(*, payment: Payment, now) -> None:
    """Send the payment's link to the customer's phone (the one the merchant gave), in
    the payment's language. The SMS goes through the verification app's outbox, which
    sends after commit; each call sends one more message (keyed by its number)."""
    locked = payment_lock(payment_id=payment.pk)
    merchant = locked.merchant
    if not merchant.sms_payment_links:
        raise SmsNotEnabled()
    if locked.state not in PAYABLE_STATES or locked.expired_at is not None:
        raise PaymentStateConflict(
            _("This payment can no longer be paid (%(state)s): no link to send.")
            % {"state": locked.state}
        )
    raw_phone = (locked.customer_data or {}).get("phone") or ""
    phone = phone_e164(raw_phone) if raw_phone else None
    if phone is None:
        raise invalid(
            "customer.phone",
            _("The payment has no valid customer phone number to send the link to."),
            "missing_field" if not raw_phone else "invalid_value",
        )
    sent = PaymentEvent.objects.filter(payment=locked, kind="payment_link_sms").count()
    language = payment_language(locked)
    with translation.override(language):
        text = _(
            "%(merchant)s: pay your purchase of %(amount)s in %(count)s instalments: %(url)s"
        ) % {
            "merchant": merchant.legal_name,
            # Plain spaces: a no-break space is outside the GSM alphabet and would halve
            # the SMS's length.
            "amount": display_eur(to_cents(locked.purchase_amount)).replace("\u00a0", " "),
            "count": locked.installments_count,
            "url": links.checkout_url(locked.public_id),
        }
    try:
        sms_send(
            phone=phone,
            text=text,
            livemode=locked.livemode,
            key=f"payment:{locked.public_id}:link:{sent + 1}",
            now=now,
        )
    except InvalidPhone as error:  # e.g. a landline: valid, but it cannot receive an SMS
        raise invalid("customer.phone", error.message) from error
    payment_event_record(locked, kind="payment_link_sms", now=now, detail={"number": sent + 1})


def payment_language(payment: Payment) -> str:
    """The language Tranche speaks to a payment's customer: its locale's, else French."""
    locale = (payment.locale or "").replace("-", "_").split("_", 1)[0].lower()
    supported = {code for code, _name in settings.LANGUAGES}
    return locale if locale in supported else settings.LANGUAGE_CODE
