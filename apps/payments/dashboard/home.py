"""The dashboard's home page: the period's key figures and charts (inline SVG, no script)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.shortcuts import render
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.common.dates import business_date
from apps.common.money import CENTS_PER_UNIT, display_eur
from apps.common.templatetags.tranche import percent_from_bps
from apps.merchants.access import merchant_required
from apps.payments import charts
from apps.payments.dashboard_stats import (
    PAY_LATER,
    PERIODS,
    HomeStats,
    Period,
    acceptance_bps,
    home_stats,
    period_days,
)


@dataclass(frozen=True)
class ChartBlock:
    """One chart on the page: its heading, a line of help and what charts.py drew."""

    id: str
    heading: str
    help: str
    chart: charts.Chart
    legend: bool = True


def plan_label(key: str) -> str:
    if key == PAY_LATER:
        return _("Pay later")
    count = int(key[1:-1])
    if count == 1:
        return _("Pay now")
    return _("Pay in %(count)d instalments") % {"count": count}


def day_label(day: date) -> str:
    return formats.date_format(day, "j N")


def axis_eur(cents: int) -> str:
    """Whole euros for the axes (their ticks are whole euros: min_step is one euro)."""
    number = formats.number_format(
        Decimal(cents) / CENTS_PER_UNIT, decimal_pos=0, use_l10n=True, force_grouping=True
    )
    return f"€{number}" if translation.get_language() == "en" else f"{number}\u00a0€"


def count_label(count: int) -> str:
    return formats.number_format(count, use_l10n=True, force_grouping=True)


def axis_percent(bps: int) -> str:
    return f"{bps // 100} %"


def home_charts(stats: HomeStats) -> list[ChartBlock]:
    """The five charts of the home page, labelled in the active language."""
    days = stats.period.days
    no_sales = _("No sales yet in this period")
    day_heading = _("Day")
    money = {"value_label": display_eur, "axis_label": axis_eur, "min_step": CENTS_PER_UNIT}
    plans = [charts.Series(key=key, label=plan_label(key)) for key in stats.plans]
    volume = charts.stacked_bars(
        [(day, stats.sales[day].volume_cents) for day in days],
        series=plans,
        chart_id="chart-volume",
        title=_("Sales volume per day, by plan"),
        description=_("%(total)s of accepted sales from %(first)s to %(last)s.")
        % {
            "total": display_eur(stats.volume_cents),
            "first": day_label(days[0]),
            "last": day_label(days[-1]),
        },
        x_label=day_label,
        x_heading=day_heading,
        empty_message=no_sales,
        **money,
    )
    count = charts.line(
        [(day, stats.sales[day].accepted) for day in days],
        series=charts.Series(key="accepted", label=_("Accepted payments")),
        chart_id="chart-count",
        title=_("Accepted payments per day"),
        description=_("%(count)s accepted payments from %(first)s to %(last)s.")
        % {
            "count": count_label(stats.accepted),
            "first": day_label(days[0]),
            "last": day_label(days[-1]),
        },
        x_label=day_label,
        x_heading=day_heading,
        value_label=count_label,
        empty_message=no_sales,
    )
    weeks = sorted(stats.collections)
    collections = charts.grouped_bars(
        [
            (
                week,
                {
                    "due": stats.collections[week].due_cents,
                    "collected": stats.collections[week].collected_cents,
                },
            )
            for week in weeks
        ],
        series=[
            charts.Series(key="due", label=_("Due")),
            charts.Series(key="collected", label=_("Collected")),
        ],
        chart_id="chart-collections",
        title=_("Amounts collected and due per week"),
        description=_("%(collected)s collected of %(due)s due in the period.")
        % {
            "collected": display_eur(stats.collected_cents),
            "due": display_eur(stats.due_cents),
        },
        x_label=day_label,
        x_heading=_("Week of"),
        empty_message=_("No instalment due in this period"),
        **money,
    )
    refunds = charts.stacked_bars(
        [(day, {"refunds": stats.refunds[day]}) for day in days],
        series=[charts.Series(key="refunds", label=_("Refunds"))],
        chart_id="chart-refunds",
        title=_("Refunds per day"),
        description=_("%(total)s refunded from %(first)s to %(last)s.")
        % {
            "total": display_eur(stats.refunded_cents),
            "first": day_label(days[0]),
            "last": day_label(days[-1]),
        },
        x_label=day_label,
        x_heading=day_heading,
        empty_message=_("No refund in this period"),
        **money,
    )
    rate = charts.line(
        [
            (day, acceptance_bps(stats.sales[day].accepted, stats.sales[day].refused))
            for day in days
        ],
        series=charts.Series(key="rate", label=_("Acceptance rate")),
        chart_id="chart-acceptance",
        title=_("Acceptance rate per day"),
        description=_("%(rate)s of decided payments accepted over the period.")
        % {"rate": _percent(stats.acceptance_bps)},
        x_label=day_label,
        x_heading=day_heading,
        value_label=percent_from_bps,
        axis_label=axis_percent,
        empty_message=_("No credit decision in this period"),
        top=10_000,
    )
    return [
        ChartBlock("volume", _("Sales volume"), _("Accepted sales per day, by plan."), volume),
        ChartBlock(
            "count", _("Number of sales"), _("Accepted payments per day."), count, legend=False
        ),
        ChartBlock(
            "collections",
            _("Collected and due"),
            _(
                "Instalments due each week of the period (principal, fees and interest), "
                "and how much of them is collected."
            ),
            collections,
        ),
        ChartBlock(
            "refunds",
            _("Refunds"),
            _("Amounts refunded per day, taken from your balance."),
            refunds,
            legend=False,
        ),
        ChartBlock(
            "acceptance",
            _("Acceptance rate"),
            _("Accepted payments out of those accepted or refused, per day of creation."),
            rate,
            legend=False,
        ),
    ]


def _percent(bps: int | None) -> str:
    return "—" if bps is None else percent_from_bps(bps)


@require_GET
@merchant_required
def home(request):
    days = period_days(request.GET.get("days"))
    period = Period.ending(business_date(timezone.now()), days=days)
    stats = home_stats(merchant_id=request.merchant.pk, livemode=request.livemode, period=period)
    return render(
        request,
        "dashboard/home.html",
        {
            "merchant": request.merchant,
            "days": days,
            "periods": PERIODS,
            "stats": stats,
            "acceptance": _percent(stats.acceptance_bps),
            "charts": home_charts(stats) if stats.has_data else [],
        },
    )
