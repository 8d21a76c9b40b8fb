"""The payment list, a payment's page, sending an IPN again, and remote sales."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.common.errors import DomainError, NotFound
from apps.common.money import display_eur, to_cents
from apps.merchants.access import merchant_required
from apps.payments import notifications, selectors
from apps.payments.dashboard.events import event_label
from apps.payments.dashboard.forms import PaymentFilterForm, RemoteSaleForm
from apps.payments.emails import customer_name, plan_display
from apps.payments.models import Notification, Payment, PaymentState
from apps.payments.services import remote_sales

PAGE_SIZE = 25


@require_safe
@merchant_required
def payment_list(request):
    form = PaymentFilterForm(request.GET or None)
    filters, ignored = form.filters() if request.GET else (selectors.PaymentFilters(), [])
    page = selectors.dashboard_payments_page(
        merchant=request.merchant,
        livemode=request.livemode,
        filters=filters,
        after=request.GET.get("after") or None,
        limit=PAGE_SIZE,
    )
    rows = _rows(page.items)
    query = request.GET.copy()
    query.pop("after", None)
    next_url = ""
    if page.has_more:
        query["after"] = rows[-1]["id"]
        next_url = f"?{query.urlencode()}"
        query.pop("after")
    return render(
        request,
        "dashboard/payments.html",
        {
            "controls": form.controls(),
            "rows": rows,
            "ignored": ignored,
            "filtered": bool(request.GET.get("q") or len(request.GET) > 0),
            "next_url": next_url,
            "first_url": f"?{query.urlencode()}" if request.GET.get("after") else "",
            "sort_links": _sort_links(request, filters.sort),
            "sort": filters.sort,
        },
    )


def _rows(payments: list[Payment]) -> list[dict]:
    """Each row's cells as text, formatted here once (a 25-row page would otherwise resolve
    and filter some 300 template variables)."""
    page_url = reverse("dashboard:payment", args=["-"]).removesuffix("-/")
    states = dict(PaymentState.choices)
    origins = dict(Payment.Origin.choices)
    tills = _tills(payments)
    rows = []
    for payment in payments:
        data = payment.customer_data or {}
        rows.append(
            {
                "id": payment.public_id,
                "url": f"{page_url}{payment.public_id}/",
                "created": formats.date_format(
                    timezone.localtime(payment.created_at), "SHORT_DATETIME_FORMAT"
                ),
                "customer": customer_name(payment, None) or payment.customer.email or "—",
                "email": data.get("email") or "",
                "amount": display_eur(to_cents(payment.purchase_amount)),
                "plan": plan_display(payment),
                "channel": ""
                if payment.origin in selectors.ONLINE_ORIGINS
                else origins.get(payment.origin, payment.origin),
                "till": tills.get(payment.pk, ""),
                "state": payment.state,
                "state_label": states.get(payment.state, payment.state),
                "next_due": formats.date_format(payment.next_due_date, "SHORT_DATE_FORMAT")
                if payment.next_due_date
                else "—",
            }
        )
    return rows


def _tills(payments: list[Payment]) -> dict[int, str]:
    """The terminal and staff member of the page's in-store payments ("Till 1 · Léa"), in
    one query (the list reads only its own columns)."""
    in_store = [p.pk for p in payments if p.origin not in selectors.ONLINE_ORIGINS]
    if not in_store:
        return {}
    tills = {}
    for pk, terminal, staff in Payment.objects.filter(pk__in=in_store).values_list(
        "pk", "terminal_name", "staff_member"
    ):
        text = " · ".join(part for part in (terminal, staff) if part)
        if text:
            tills[pk] = text
    return tills


def _sort_links(request, current: str) -> dict[str, str]:
    """The column headers' links: a click sorts by that column, a second click reverses."""
    links = {}
    for column in ("created", "amount"):
        target = column if current == f"-{column}" else f"-{column}"
        query = request.GET.copy()
        query.pop("after", None)
        query["sort"] = target
        links[column] = f"?{query.urlencode()}"
    return links


def _payment_or_404(request, payment_id: str) -> Payment:
    try:
        return selectors.dashboard_payment(
            merchant=request.merchant, livemode=request.livemode, payment_id=payment_id
        )
    except NotFound as exc:
        raise Http404 from exc


@require_safe
@merchant_required
def payment_detail(request, payment_id: str):
    payment = _payment_or_404(request, payment_id)
    instalments = list(payment.instalments.all())
    receipts = {}
    for receipt in payment.receipts.all():  # prefetched with the payment
        if receipt.rendered_at is not None and receipt.instalment_id is not None:
            receipts.setdefault(receipt.instalment_id, []).append(receipt)
    owed_cents = sum(
        to_cents(row.total_amount) for row in instalments if row.state != row.State.PAID
    )
    paid_cents = sum(
        to_cents(row.total_amount) for row in instalments if row.state == row.State.PAID
    )
    return render(
        request,
        "dashboard/payment.html",
        {
            "payment": payment,
            "customer_name": customer_name(payment, None),
            "customer": payment.customer_data or {},
            "plan": plan_display(payment),
            "instalments": [(row, receipts.get(row.pk, [])) for row in instalments],
            "owed_cents": owed_cents,
            "paid_cents": paid_cents,
            "events": [
                {"row": event, "label": event_label(event)} for event in payment.events.all()
            ],
            "notifications": [
                (
                    row,
                    notifications.notification_is_stale(
                        event=row.event,
                        state_at_event=row.state_at_event,
                        current_state=payment.state,
                    ),
                )
                for row in payment.notifications.all()
            ],
            "orders": list(payment.orders.all()),
            "fraud_flags": list(payment.fraud_flags.all()),
            "pos_session_url": _pos_session_url(payment),
        },
    )


def _pos_session_url(payment: Payment) -> str:
    """The dashboard page of the in-store sale that created the payment, if any."""
    if payment.origin != Payment.Origin.POS_DEVICE:
        return ""
    try:
        session = payment.pos_session
    except ObjectDoesNotExist:
        return ""
    return reverse("pos:session", args=[session.public_id])


@require_POST
@merchant_required
def notification_resend(request, payment_id: str, notification_id: int):
    payment = _payment_or_404(request, payment_id)
    notification = Notification.objects.filter(payment=payment, pk=notification_id).first()
    if notification is None:
        raise Http404
    try:
        notifications.notification_resend(notification=notification, now=timezone.now())
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("The notification will be sent again to %(url)s.") % {"url": notification.url},
        )
    return redirect(reverse("dashboard:payment", args=[payment.public_id]) + "#notifications")


@require_http_methods(["GET", "POST"])
@merchant_required
def remote_sale(request):
    merchant = request.merchant
    plans = remote_sales.remote_sale_plans(merchant=merchant)
    choices = [(plan.key, _plan_label(plan)) for plan in plans]
    form = RemoteSaleForm(request.POST or None, plans=choices)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        sale = remote_sales.RemoteSale(
            amount_cents=data["amount"],
            plan_key=data["plan"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            send_by=data["send_by"],
            phone=data["phone"],
            email=data["email"],
            reference=data["reference"],
        )
        try:
            payment = remote_sales.remote_sale_create(
                merchant=merchant,
                livemode=request.livemode,
                sale=sale,
                staff_email=request.user.email,
                now=timezone.now(),
            )
        except DomainError as error:
            for problem in error.extra.get("errors") or []:
                form.add_error(None, problem["message"])
            if not form.errors:
                form.add_error(None, error.message)
        else:
            messages.success(
                request,
                _("Payment created and its link sent by SMS.")
                if sale.send_by == "sms"
                else _("Payment created and its link sent by email."),
            )
            return redirect("dashboard:payment", payment_id=payment.public_id)
    return render(request, "dashboard/remote_sale.html", {"form": form, "has_plans": bool(plans)})


def _plan_label(plan) -> str:
    if plan.deferred_days:
        return _("Pay in %(count)d days") % {"count": plan.deferred_days}
    if plan.deferred_months:
        return _("Pay in %(count)d months") % {"count": plan.deferred_months}
    return _("Pay in %(count)d instalments") % {"count": plan.installments_count}
