"""The partner directory: the shops that take Tranche, with their category, website and the
plans they offer, searchable by name and filtered by category. Open to anyone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET

from apps.merchants.models import FeePlan, Merchant
from apps.merchants.selectors import DIRECTORY_QUERY_MAX_LENGTH, directory_merchants
from apps.schedules.portal.session import portal_customer

PER_PAGE = 24


@dataclass(frozen=True)
class PlanOffer:
    """One plan a shop offers, as the directory shows it: "3x", "in 30 days"..."""

    label: str
    online: bool
    in_store: bool


def plan_offers(plans: Iterable[FeePlan], *, store_only: bool = False) -> list[PlanOffer]:
    """The plans a shop offers, one per identity (online and in store merged): instalment
    plans by count, then the pay-later ones by delay. A plain 1x (paying now) is no plan."""
    offers: dict[tuple[int, int, int], tuple[bool, bool]] = {}
    for plan in plans:
        if plan.installments_count == 1 and not plan.is_deferred:
            continue
        identity = (plan.deferred_days, plan.deferred_months, plan.installments_count)
        online, in_store = offers.get(identity, (False, False))
        offers[identity] = (
            online or (plan.available_online and not store_only),
            in_store or plan.available_in_pos,
        )
    shown = []
    for (days, months, count), (online, in_store) in sorted(
        offers.items(), key=lambda item: (item[0][0] * 1 + item[0][1] * 30, item[0][2])
    ):
        if not (online or in_store):
            continue
        shown.append(PlanOffer(_plan_label(count, days, months), online, in_store))
    return shown


def _plan_label(count: int, days: int, months: int) -> str:
    if days:
        return ngettext("pay in %(days)d day", "pay in %(days)d days", days) % {"days": days}
    if months:
        return ngettext("pay in %(months)d month", "pay in %(months)d months", months) % {
            "months": months
        }
    return gettext("%(count)dx") % {"count": count}


@dataclass(frozen=True)
class Partner:
    name: str
    website: str
    category: str
    offers: list[PlanOffer]


@require_GET
def partners(request: HttpRequest) -> HttpResponse:
    request.customer = portal_customer(request)
    query = request.GET.get("q", "").strip()[:DIRECTORY_QUERY_MAX_LENGTH]
    category = request.GET.get("category", "")
    if category not in Merchant.Category.values:
        category = ""
    merchants = directory_merchants(query=query, category=category)
    page = Paginator(merchants, PER_PAGE).get_page(request.GET.get("page"))
    categories = dict(Merchant.Category.choices)
    shown = [
        Partner(
            name=merchant.legal_name,
            website=merchant.website,
            category=str(categories.get(merchant.category, "")),
            offers=plan_offers(merchant.directory_plans, store_only=merchant.store_only),
        )
        for merchant in page.object_list
    ]
    filters = {key: value for key, value in (("q", query), ("category", category)) if value}
    return render(
        request,
        "portal/partners.html",
        {
            "page": page,
            "partners": shown,
            "query": query,
            "category": category,
            "categories": Merchant.Category.choices,
            "filtered": bool(filters),
            "page_query": urlencode(filters),
        },
    )
