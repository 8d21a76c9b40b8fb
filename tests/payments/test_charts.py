"""The home page's charts: pure SVG builders, read back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from apps.payments import charts
from apps.payments.charts import PLOT_HEIGHT, Series, nice_axis

SVG = "{http://www.w3.org/2000/svg}"
DAY = date(2030, 3, 1)
P3X, P4X = Series("P3X", "3x"), Series("P4X", "4x")


def days(count: int) -> list[date]:
    return [DAY + timedelta(days=n) for n in range(count)]


def build_bars(points, series=(P3X, P4X), **options):
    return charts.stacked_bars(
        points,
        series=list(series),
        chart_id="c",
        title=options.pop("title", "Sales"),
        description="Sales per day",
        x_label=lambda day: day.strftime("%d/%m"),
        value_label=lambda cents: f"{cents} c",
        empty_message="Nothing yet",
        **options,
    )


def parse(chart) -> ET.Element:
    return ET.fromstring(str(chart.svg))  # noqa: S314 -- markup this test just built


def rects(chart) -> list[ET.Element]:
    return parse(chart).findall(f".//{SVG}rect")


def x_labels(chart) -> list[str]:
    group = next(g for g in parse(chart).iter(f"{SVG}g") if g.get("class") == "x-labels")
    return [text.text for text in group.findall(f"{SVG}text")]


@pytest.mark.parametrize(
    ("highest", "min_step", "top", "ticks"),
    [
        (0, 1, 1, (0, 1)),
        (7, 1, 8, (0, 2, 4, 6, 8)),
        (100, 1, 100, (0, 50, 100)),
        (123_456, 1, 150_000, (0, 50_000, 100_000, 150_000)),
        (150, 100, 200, (0, 100, 200)),
        (10_000, 1, 10_000, (0, 5_000, 10_000)),
    ],
)
def test_the_axis_goes_up_to_a_round_value_in_round_steps(highest, min_step, top, ticks):
    axis = nice_axis(highest, min_step=min_step)

    assert axis.top == top
    assert axis.ticks == ticks
    assert axis.top >= highest


def test_bar_heights_are_proportional_to_their_values():
    chart = build_bars([(DAY, {"P3X": 1_000}), (DAY + timedelta(days=1), {"P3X": 2_000})])

    small, large = (float(rect.get("height")) for rect in rects(chart))

    assert large == pytest.approx(2 * small)
    assert large == pytest.approx(PLOT_HEIGHT)  # 2 000 is the axis top: the whole plot


def test_stacked_series_sit_on_each_other_in_series_order():
    chart = build_bars([(DAY, {"P3X": 600, "P4X": 400})])

    bottom, top = rects(chart)

    assert (bottom.get("data-series"), top.get("data-series")) == ("P3X", "P4X")
    assert float(top.get("y")) + float(top.get("height")) == pytest.approx(float(bottom.get("y")))
    assert float(bottom.get("height")) == pytest.approx(1.5 * float(top.get("height")))
    assert [item.label for item in chart.legend] == ["3x", "4x"]
    assert bottom.get("fill") == chart.legend[0].color != chart.legend[1].color


def test_each_bar_says_its_day_series_and_value_on_hover():
    chart = build_bars([(DAY, {"P4X": 1_234})])

    (rect,) = rects(chart)

    assert rect.find(f"{SVG}title").text == "01/03 · 4x: 1234 c"


def test_a_period_without_sales_draws_the_empty_message_and_no_bar():
    chart = build_bars([(day, {}) for day in days(7)])

    assert chart.empty
    assert rects(chart) == []
    assert "Nothing yet" in str(chart.svg)
    assert len(chart.rows) == 7  # the table still lists the days, with zeros


def test_no_point_at_all_is_empty_too():
    chart = build_bars([])

    assert chart.empty
    assert chart.rows == ()


def test_one_day_draws_one_bar_inside_the_plot_and_names_the_day():
    chart = build_bars([(DAY, {"P3X": 500})])

    (rect,) = rects(chart)

    assert 0 < float(rect.get("width")) < charts.PLOT_WIDTH
    assert float(rect.get("x")) >= charts.LEFT
    assert x_labels(chart) == ["01/03"]


def test_ninety_days_name_a_few_days_including_the_last():
    points = [(day, {"P3X": 100}) for day in days(90)]

    chart = build_bars(points)

    labels = x_labels(chart)
    assert 2 <= len(labels) <= charts.MAX_X_LABELS
    assert labels[-1] == (DAY + timedelta(days=89)).strftime("%d/%m")
    assert len(rects(chart)) == 90


def test_the_y_axis_is_labelled_with_the_axis_formatter():
    chart = build_bars([(DAY, {"P3X": 1_500})], axis_label=lambda cents: f"{cents // 100} €")

    grid = next(g for g in parse(chart).iter(f"{SVG}g") if g.get("class") == "grid")
    labels = [text.text for text in grid.findall(f"{SVG}text")]

    assert labels == ["0 €", "5 €", "10 €", "15 €"]


def test_the_svg_is_an_accessible_image_that_scales_with_its_container():
    chart = build_bars([(DAY, {"P3X": 500})])

    root = parse(chart)

    assert root.get("role") == "img"
    assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"
    assert root.get("width") == "100%"
    assert root.get("aria-labelledby") == "c-title c-desc"
    assert root.find(f"{SVG}title").text == "Sales"
    assert root.find(f"{SVG}desc").text == "Sales per day"


def test_the_data_table_repeats_every_figure():
    chart = build_bars(
        [(DAY, {"P3X": 500}), (DAY + timedelta(days=1), {"P4X": 700})], x_heading="Day"
    )

    assert chart.columns == ("Day", "3x", "4x")
    assert chart.rows == (("01/03", "500 c", "0 c"), ("02/03", "0 c", "700 c"))


def test_text_is_escaped_in_the_markup():
    chart = build_bars(
        [(DAY, {"P3X": 500})],
        series=[Series("P3X", "<b>3x</b> & co")],
        title='<script>alert("x")</script>',
    )

    markup = str(chart.svg)
    assert "<script>" not in markup
    assert "&lt;b&gt;3x&lt;/b&gt; &amp; co" in markup
    parse(chart)  # still well-formed XML


def test_grouped_bars_stand_side_by_side_at_their_own_heights():
    chart = charts.grouped_bars(
        [(DAY, {"due": 1_000, "collected": 500})],
        series=[Series("due", "Due"), Series("collected", "Collected")],
        chart_id="g",
        title="Collected and due",
        description="",
        x_label=str,
        value_label=str,
    )

    due, collected = rects(chart)

    assert float(collected.get("x")) > float(due.get("x"))
    assert float(due.get("height")) == pytest.approx(2 * float(collected.get("height")))
    assert float(due.get("y")) + float(due.get("height")) == pytest.approx(
        float(collected.get("y")) + float(collected.get("height"))
    )


def test_grouped_bars_without_values_are_empty():
    chart = charts.grouped_bars(
        [(DAY, {"due": 0, "collected": 0})],
        series=[Series("due", "Due"), Series("collected", "Collected")],
        chart_id="g",
        title="t",
        description="",
        x_label=str,
        value_label=str,
        empty_message="No instalment due",
    )

    assert chart.empty
    assert "No instalment due" in str(chart.svg)


def build_line(values, **options):
    return charts.line(
        list(zip(days(len(values)), values, strict=True)),
        series=Series("rate", "Rate"),
        chart_id="l",
        title="Rate",
        description="",
        x_label=lambda day: day.strftime("%d/%m"),
        value_label=lambda bps: f"{bps / 100:g} %",
        empty_message="No decision",
        **options,
    )


def test_a_line_breaks_where_a_day_has_no_value():
    chart = build_line([5_000, 10_000, None, 2_500, 7_500], top=10_000)

    root = parse(chart)
    polylines = root.findall(f".//{SVG}polyline")
    dots = root.findall(f".//{SVG}circle")

    assert len(polylines) == 2
    assert [dot.get("data-value") for dot in dots] == ["5000", "10000", "2500", "7500"]
    assert chart.rows[2] == ("03/03", "—")


def test_a_line_point_sits_at_its_share_of_the_fixed_top():
    chart = build_line([10_000, 5_000, 0], top=10_000)

    full, half, zero = (float(dot.get("cy")) for dot in parse(chart).findall(f".//{SVG}circle"))

    assert zero - half == pytest.approx(PLOT_HEIGHT / 2)
    assert zero - full == pytest.approx(PLOT_HEIGHT)


def test_a_line_without_any_value_is_empty():
    chart = build_line([None, None], top=10_000)

    assert chart.empty
    assert parse(chart).findall(f".//{SVG}circle") == []


def test_a_line_of_zeros_without_a_fixed_top_is_empty():
    assert build_line([0, 0, 0]).empty
