"""Receipt PDF figure for `make bench`, in process, no database.

``receipt_pdf_median``: the median wall time of ``apps.schedules.receipts.receipt_pdf`` over
200 renders (after 10 warm-ups) of a realistic receipt: instalment 2 of a 4x plan with a
customer fee, in French, live mode, one order reference, a card, 2 instalments still to
come; the p90 is printed beside it. Each render is the whole job from ``Receipt.data`` to
PDF bytes: the context and the template, then WeasyPrint with the shipped subset font and
the font configuration, stylesheet and URL fetcher built once per process.

Baseline, measured in the same run: the naive render of the same template, as one would
first write it: ``weasyprint.HTML(string=html).write_pdf()`` with the same stylesheet
inlined in a ``<style>`` element, minus the shipped font (``font-family: sans-serif``,
which fontconfig resolves to a system font: DejaVu Sans on this machine, the font the
subset is cut from, so both lay out the same page), WeasyPrint making a new font
configuration and parsing the stylesheet at every render; 30 renders, median. The two are
timed in alternating blocks (20 fast, 3 naive, 10 times) so a noisy neighbour weighs on
both. Target: value <= 30 ms. The ratio is value / baseline.

The process CPU time of each render is recorded too and printed as context (on a shared
machine, wall time also counts the time other processes hold the cores). WeasyPrint's
progress messages (INFO, seven per render) are silenced for the run.

Run alone: ``python -m benchmarks.receipts``; ``python -m benchmarks`` runs it among the
others.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
WARMUPS = 10
RUNS = 200
BASELINE_RUNS = 30
BLOCKS = 10  # RUNS / BLOCKS fast renders, then BASELINE_RUNS / BLOCKS naive ones, BLOCKS times
TARGET_MS = 30.0
SHIPPED_FONT = "Tranche-Receipt-Sans"  # as the PDF names apps/schedules/fonts/*.ttf

# Instalment 2 of a 4x plan of 266.67 EUR with a 2.32 % customer fee on each instalment.
DATA = {
    "language": "fr",
    "livemode": True,
    "number": "R2026-0000042",
    "merchant_name": "Maison Lumière SAS",
    "order_references": ["CMD-2026-10457"],
    "payment_id": "payment_11aBcDeFgHiJkLmNoPq",
    "customer_name": "Camille Martin",
    "instalment_number": 2,
    "instalments_count": 4,
    "amount_cents": 6822,
    "principal_cents": 6667,
    "fee_cents": 155,
    "interest_cents": 0,
    "paid_at": "2026-10-05T04:12:09+00:00",
    "card": {"brand": "Visa", "last4": "4242"},
    "remaining": [
        {"number": 3, "due_date": "2026-11-05", "amount_cents": 6822},
        {"number": 4, "due_date": "2026-12-05", "amount_cents": 6821},
    ],
}

Say = Callable[[str], None]


@dataclass
class ReceiptFigures:
    render_ms: list[float] = field(default_factory=list)  # receipt_pdf, wall
    render_cpu_ms: list[float] = field(default_factory=list)
    naive_ms: list[float] = field(default_factory=list)  # the naive render, wall
    naive_cpu_ms: list[float] = field(default_factory=list)
    pdf_bytes: int = 0
    naive_pdf_bytes: int = 0

    @property
    def value(self) -> float:
        return statistics.median(self.render_ms)

    @property
    def p90(self) -> float:
        ordered = sorted(self.render_ms)
        return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]

    @property
    def baseline(self) -> float:
        return statistics.median(self.naive_ms)

    @property
    def ratios(self) -> list[float]:
        return [self.value / self.baseline] if self.baseline else []

    @property
    def verdicts(self) -> dict[str, bool]:
        return {"receipt_pdf": self.value <= TARGET_MS}


def setup_django() -> None:
    """Settings only: the receipt renders from a dict, no database is opened."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")
_FAMILY = re.compile(r'font-family:\s*"Tranche Receipt Sans";')


def naive_html(data: dict) -> str:
    """The same receipt with its stylesheet inlined and the system's sans-serif font."""
    from apps.schedules.receipts import STYLESHEET, receipt_html

    css = _FAMILY.sub("font-family: sans-serif;", _FONT_FACE.sub("", STYLESHEET.read_text()))
    if "Tranche Receipt Sans" in css:
        raise SystemExit("benchmarks.receipts: could not take the shipped font out of the CSS")
    return receipt_html(data).replace("</head>", f"<style>{css}</style>\n</head>", 1)


def naive_pdf(data: dict) -> bytes:
    """What a first version would do at every receipt: template, then WeasyPrint from
    scratch (a new font configuration, the stylesheet parsed again, system fonts)."""
    import weasyprint

    return weasyprint.HTML(string=naive_html(data)).write_pdf()


def pdf_fonts(pdf: bytes) -> set[str]:
    """The font names a PDF embeds (its object streams are compressed: inflate them)."""
    inflated = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            inflated.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    names = re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([A-Za-z0-9-]+)", b"\n".join(inflated))
    return {name.decode() for name in names}


def check(pdf: bytes, *, shipped: bool, what: str) -> set[str]:
    """Each render's answer is a PDF, in the shipped font or (the naive one) not; returns
    the fonts it embeds."""
    fonts = pdf_fonts(pdf)
    ours = {name for name in fonts if name.startswith(SHIPPED_FONT)}
    wrong_fonts = ours != fonts if shipped else bool(ours)
    if not pdf.startswith(b"%PDF-") or not fonts or wrong_fonts:
        raise SystemExit(f"benchmarks.receipts: unexpected {what} render (fonts: {fonts})")
    return fonts


def _timed(call: Callable[[], bytes]) -> tuple[float, float, bytes]:
    cpu, wall = time.process_time(), time.perf_counter()
    pdf = call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, pdf


def run(say: Say) -> ReceiptFigures:
    from apps.schedules.receipts import receipt_pdf

    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    say(
        f"receipt PDF in process: receipt_pdf, {RUNS} renders after {WARMUPS} warm-ups, "
        f"against the naive render of the same template ({BASELINE_RUNS} renders), in "
        f"{BLOCKS} alternating blocks; 4x plan, instalment 2, 2 to come, French, live mode"
    )
    started = time.perf_counter()
    first_ms, _cpu, pdf = _timed(lambda: receipt_pdf(DATA))
    check(pdf, shipped=True, what="fast")
    naive = naive_pdf(DATA)
    system_fonts = check(naive, shipped=False, what="naive")
    figures = ReceiptFigures(pdf_bytes=len(pdf), naive_pdf_bytes=len(naive))
    for _ in range(WARMUPS):
        receipt_pdf(DATA)
    for _block in range(BLOCKS):
        for _ in range(RUNS // BLOCKS):
            wall, cpu, _pdf = _timed(lambda: receipt_pdf(DATA))
            figures.render_ms.append(wall)
            figures.render_cpu_ms.append(cpu)
        for _ in range(BASELINE_RUNS // BLOCKS):
            wall, cpu, _pdf = _timed(lambda: naive_pdf(DATA))
            figures.naive_ms.append(wall)
            figures.naive_cpu_ms.append(cpu)
    say(
        f"  first render in this process {first_ms:.0f} ms (fonts loaded, stylesheet "
        f"parsed); PDF {figures.pdf_bytes:,} bytes (naive {figures.naive_pdf_bytes:,}, in "
        f"{', '.join(sorted(system_fonts))}); "
        f"CPU time median {statistics.median(figures.render_cpu_ms):.2f} ms (naive "
        f"{statistics.median(figures.naive_cpu_ms):.2f} ms); "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    return figures


def figure_lines(figures: ReceiptFigures) -> list[str]:
    from benchmarks.__main__ import figure_line

    verdict = "PASS" if figures.verdicts["receipt_pdf"] else "FAIL"
    return [
        figure_line(
            "receipt_pdf_median",
            figures.value,
            figures.baseline,
            figures.ratios,
            f"(receipt_pdf from Receipt.data, median of {len(figures.render_ms)}; p90 "
            f"{figures.p90:.2f} ms; baseline the naive WeasyPrint render of the same "
            f"template with the system font, median of {len(figures.naive_ms)}; target "
            f"value <= {TARGET_MS:.0f} ms)  {verdict}",
            unit="ms",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.receipts", description=__doc__.split("\n")[0]
    )
    parser.parse_args(argv)
    setup_django()
    print(
        f"benchmark: receipt PDFs only, in process, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}"
        f"\n  python {platform.python_version()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    figures = run(lambda line: print(line, flush=True))
    print(flush=True)
    for line in figure_lines(figures):
        print(line, flush=True)
    return 0 if all(figures.verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
