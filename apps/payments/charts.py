"""Charts as inline SVG, drawn on the server: pure functions, no ORM, no JavaScript.

Each builder takes the points to draw (a date and each series' integer value: cents, a count,
basis points), the words to show (title, description, formatted labels: the caller formats
dates and amounts in the user's language) and returns a :class:`Chart`: the SVG markup (every
text escaped), its legend and the same figures as a table for screen readers. The SVG scales
with its container (a viewBox, ``width="100%"``) and reads as one image (``role="img"`` with
its ``<title>`` and ``<desc>``); each bar or point carries a ``<title>`` shown on hover.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

# A narrow viewBox: at half a desktop page or across a phone the labels stay readable.
WIDTH = 480
HEIGHT = 250
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 14, 30  # room for the last day's label
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 6
# Distinct on white and for the common colour blindnesses (Okabe-Ito, brand orange first).
PALETTE = ("#fa5022", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#6b6880")

Label = Callable[[int], str]
DateLabel = Callable[[date], str]


@dataclass(frozen=True)
class Series:
    key: str
    label: str


@dataclass(frozen=True)
class LegendItem:
    label: str
    color: str


@dataclass(frozen=True)
class Chart:
    svg: SafeString
    legend: tuple[LegendItem, ...]
    columns: tuple[str, ...]  # the data table's header: the x label, then each series
    rows: tuple[tuple[str, ...], ...]  # one formatted row per point
    empty: bool  # nothing but zeros (or no point at all)


@dataclass(frozen=True)
class Axis:
    top: int  # the value drawn at the top of the plot
    ticks: tuple[int, ...]  # from 0 to top


def nice_axis(highest: int, *, min_step: int = 1, intervals: int = 4) -> Axis:
    """0 to a round value at or above ``highest`` in about ``intervals`` steps of 1, 2 or 5
    times a power of ten (never smaller than ``min_step``)."""
    if highest <= 0:
        return Axis(top=min_step, ticks=(0, min_step))
    rough = max(-(-highest // intervals), min_step)
    magnitude = 10 ** (len(str(rough)) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    step = max(step, min_step)
    top = step * -(-highest // step)
    return Axis(top=top, ticks=tuple(range(0, top + 1, step)))


def _y(value: int, axis: Axis) -> float:
    return round(TOP + PLOT_HEIGHT - value * PLOT_HEIGHT / axis.top, 2)


def bar_height(value: int, axis: Axis) -> float:
    """A bar's height in the viewBox: proportional to its value, the axis top filling the plot."""
    return round(value * PLOT_HEIGHT / axis.top, 2)


def _x_label_every(count: int) -> int:
    return max(1, -(-count // MAX_X_LABELS))


def _open(chart_id: str, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" focusable="false" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _y_axis(axis: Axis, axis_label: Label) -> list[str]:
    parts = ['<g class="grid" aria-hidden="true">']
    for tick in axis.ticks:
        y = _y(tick, axis)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#e4e2ee" />'
            f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle" '
            f'font-size="13" fill="#6b6880">{escape(axis_label(tick))}</text>'
        )
    parts.append("</g>")
    return parts


def _x_labels(days: Sequence[date], x_label: DateLabel, slot: float) -> list[str]:
    every = _x_label_every(len(days))
    parts = ['<g class="x-labels" aria-hidden="true">']
    last = len(days) - 1
    for index, day in enumerate(days):
        # Every n-th day, counted back from the last: the latest day is always named.
        if (last - index) % every:
            continue
        x = round(LEFT + slot * (index + 0.5), 2)
        parts.append(
            f'<text x="{x}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-size="13" '
            f'fill="#6b6880">{escape(x_label(day))}</text>'
        )
    parts.append("</g>")
    return parts


def _empty_svg(chart_id: str, title: str, description: str, message: str) -> SafeString:
    parts = _open(chart_id, title, description)
    parts.append(
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="13" '
        f'fill="#6b6880">{escape(message)}</text></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308 -- every text above is escaped


def _table(
    points: Sequence[tuple[date, Mapping[str, int | None]]],
    series: Sequence[Series],
    x_label: DateLabel,
    value_label: Label,
    x_heading: str,
) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    columns = (x_heading, *(item.label for item in series))
    rows = tuple(
        (
            x_label(day),
            *(
                "—" if values.get(item.key) is None else value_label(values[item.key])
                for item in series
            ),
        )
        for day, values in points
    )
    return columns, rows


def _filled(
    points: Sequence[tuple[date, Mapping[str, int]]], series: Sequence[Series]
) -> list[tuple[date, dict[str, int]]]:
    """Every series' value at every point: a bar chart's missing value is zero."""
    return [(day, {item.key: values.get(item.key, 0) for item in series}) for day, values in points]


def _legend(series: Sequence[Series]) -> tuple[LegendItem, ...]:
    return tuple(
        LegendItem(label=item.label, color=PALETTE[index % len(PALETTE)])
        for index, item in enumerate(series)
    )


def stacked_bars(
    points: Sequence[tuple[date, Mapping[str, int]]],
    *,
    series: Sequence[Series],
    chart_id: str,
    title: str,
    description: str,
    x_label: DateLabel,
    value_label: Label,
    axis_label: Label | None = None,
    x_heading: str = "",
    empty_message: str = "",
    min_step: int = 1,
) -> Chart:
    """One bar per point, its series stacked bottom-up in ``series`` order."""
    axis_label = axis_label or value_label
    points = _filled(points, series)
    columns, rows = _table(points, series, x_label, value_label, x_heading)
    totals = [sum(values.get(item.key, 0) for item in series) for _day, values in points]
    legend = _legend(series)
    if not points or not any(totals):
        svg = _empty_svg(chart_id, title, description, empty_message)
        return Chart(svg=svg, legend=legend, columns=columns, rows=rows, empty=True)
    axis = nice_axis(max(totals), min_step=min_step)
    slot = PLOT_WIDTH / len(points)
    width = round(max(slot * 0.7, 1), 2)
    parts = _open(chart_id, title, description) + _y_axis(axis, axis_label)
    parts.append('<g class="bars">')
    for index, (day, values) in enumerate(points):
        x = round(LEFT + slot * index + (slot - width) / 2, 2)
        stacked = 0
        for item, swatch in zip(series, legend, strict=True):
            value = values.get(item.key, 0)
            if value <= 0:
                continue
            height = bar_height(value, axis)
            y = _y(stacked + value, axis)
            stacked += value
            tip = f"{x_label(day)} · {item.label}: {value_label(value)}"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{width}" height="{height}" '
                f'fill="{swatch.color}" data-series="{escape(item.key)}" data-value="{value}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    parts.append("</g>")
    parts += _x_labels([day for day, _values in points], x_label, slot)
    parts += _baseline()
    return Chart(svg=_close(parts), legend=legend, columns=columns, rows=rows, empty=False)


def grouped_bars(
    points: Sequence[tuple[date, Mapping[str, int]]],
    *,
    series: Sequence[Series],
    chart_id: str,
    title: str,
    description: str,
    x_label: DateLabel,
    value_label: Label,
    axis_label: Label | None = None,
    x_heading: str = "",
    empty_message: str = "",
    min_step: int = 1,
) -> Chart:
    """One group per point, one bar per series side by side (e.g. collected beside due)."""
    axis_label = axis_label or value_label
    points = _filled(points, series)
    columns, rows = _table(points, series, x_label, value_label, x_heading)
    legend = _legend(series)
    highest = max(
        (values.get(item.key, 0) for _day, values in points for item in series), default=0
    )
    if highest <= 0:
        svg = _empty_svg(chart_id, title, description, empty_message)
        return Chart(svg=svg, legend=legend, columns=columns, rows=rows, empty=True)
    axis = nice_axis(highest, min_step=min_step)
    slot = PLOT_WIDTH / len(points)
    group = slot * 0.8
    width = round(max(group / len(series), 1), 2)
    parts = _open(chart_id, title, description) + _y_axis(axis, axis_label)
    parts.append('<g class="bars">')
    for index, (day, values) in enumerate(points):
        start = LEFT + slot * index + (slot - group) / 2
        for position, (item, swatch) in enumerate(zip(series, legend, strict=True)):
            value = values.get(item.key, 0)
            if value <= 0:
                continue
            x = round(start + width * position, 2)
            tip = f"{x_label(day)} · {item.label}: {value_label(value)}"
            parts.append(
                f'<rect x="{x}" y="{_y(value, axis)}" width="{width}" '
                f'height="{bar_height(value, axis)}" fill="{swatch.color}" '
                f'data-series="{escape(item.key)}" data-value="{value}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    parts.append("</g>")
    parts += _x_labels([day for day, _values in points], x_label, slot)
    parts += _baseline()
    return Chart(svg=_close(parts), legend=legend, columns=columns, rows=rows, empty=False)


def line(
    points: Sequence[tuple[date, int | None]],
    *,
    series: Series,
    chart_id: str,
    title: str,
    description: str,
    x_label: DateLabel,
    value_label: Label,
    axis_label: Label | None = None,
    x_heading: str = "",
    empty_message: str = "",
    top: int | None = None,
    min_step: int = 1,
) -> Chart:
    """One series as a line with a dot per point; a point without a value (None) breaks the
    line. ``top`` fixes the axis (a rate up to 100 %), else it fits the highest value."""
    axis_label = axis_label or value_label
    keyed = [(day, {series.key: value}) for day, value in points]
    columns, rows = _table(keyed, [series], x_label, value_label, x_heading)
    legend = _legend([series])
    values = [value for _day, value in points if value is not None]
    if not values or (top is None and max(values) <= 0):
        svg = _empty_svg(chart_id, title, description, empty_message)
        return Chart(svg=svg, legend=legend, columns=columns, rows=rows, empty=True)
    axis = nice_axis(top or max(values), min_step=min_step)
    slot = PLOT_WIDTH / len(points)
    color = legend[0].color
    parts = _open(chart_id, title, description) + _y_axis(axis, axis_label)
    runs: list[list[str]] = [[]]
    radius = 3 if len(points) <= 31 else 2
    dots = []
    for index, (day, value) in enumerate(points):
        if value is None:
            runs.append([])
            continue
        x, y = round(LEFT + slot * (index + 0.5), 2), _y(value, axis)
        runs[-1].append(f"{x},{y}")
        tip = f"{x_label(day)} · {series.label}: {value_label(value)}"
        dots.append(
            f'<circle cx="{x}" cy="{y}" r="{radius}" fill="{color}" data-value="{value}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    parts.append(f'<g class="line" fill="none" stroke="{color}" stroke-width="2">')
    parts += [f'<polyline points="{" ".join(run)}" />' for run in runs if len(run) > 1]
    parts.append("</g>")
    parts.append('<g class="dots">')
    parts += dots
    parts.append("</g>")
    parts += _x_labels([day for day, _value in points], x_label, slot)
    parts += _baseline()
    return Chart(svg=_close(parts), legend=legend, columns=columns, rows=rows, empty=False)


def _baseline() -> list[str]:
    y = TOP + PLOT_HEIGHT
    return [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#6b6880" />']


def _close(parts: list[str]) -> SafeString:
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 -- every text in the parts is escaped
