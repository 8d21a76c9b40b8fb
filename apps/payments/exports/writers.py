"""The CSV and XLSX writers (files people open in a spreadsheet)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from apps.common.money import CENTS_PER_UNIT, format_eur
from apps.common.spreadsheets import safe_cell
from apps.payments.exports.base import BOM, XLSX_MAX_ROWS, ExportTooLarge
from apps.payments.exports.columns import Layout

# --- writers ----------------------------------------------------------------------------------


class CsvWriter:
    """UTF-8 with a BOM (Excel reads accents right), comma-separated, CRLF lines; euros as
    text with two decimals ("123.45"), cents as integers, nothing as an empty cell."""

    suffix = "csv"

    def __init__(self, layout: Layout, handle):
        self.money = layout.money
        self.handle = handle
        self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        self.text.write(BOM)
        self.writer = csv.writer(self.text)
        self.writer.writerow([safe_cell(c.header) for c in layout.columns])

    def write(self, row: list) -> None:
        line = list(row)
        for i in self.money:
            if line[i] is not None:
                line[i] = format_eur(line[i])
        self.writer.writerow(line)

    def finish(self) -> None:
        self.text.flush()
        self.text.detach()  # the handle stays open for the storage to read
        self.handle.seek(0)


class XlsxWriter:
    """One sheet, written row by row (``constant_memory``): numbers as numbers, euros as
    numbers formatted 0.00 (from Decimal, exact), times and dates as ISO text, text as
    strings (never a formula: ``write_string``, after ``safe_cell``)."""

    suffix = "xlsx"

    def __init__(self, layout: Layout, handle):
        import xlsxwriter

        self.money = frozenset(layout.money)
        self.numbers = layout.numbers
        self.handle = handle
        self.book = xlsxwriter.Workbook(handle, {"constant_memory": True})
        self.sheet = self.book.add_worksheet("export")
        self.euros = self.book.add_format({"num_format": "0.00"})
        bold = self.book.add_format({"bold": True})
        for index, column in enumerate(layout.columns):
            self.sheet.write_string(0, index, safe_cell(column.header), bold)
        # The undecorated writers: the public ones only add A1-notation parsing, which is
        # 40 % of the time spent per cell here.
        self.write_string = getattr(self.sheet, "_write_string", self.sheet.write_string)
        self.write_number = getattr(self.sheet, "_write_number", self.sheet.write_number)
        self.row = 1

    def write(self, row: list) -> None:
        number, string, line = self.write_number, self.write_string, self.row
        if line >= XLSX_MAX_ROWS:
            raise ExportTooLarge()
        for index, value in enumerate(row):
            if value is None or value == "":
                continue
            if index in self.numbers:
                if index in self.money:
                    number(line, index, Decimal(value) / CENTS_PER_UNIT, self.euros)
                else:
                    number(line, index, value, None)
            else:
                string(line, index, value, None)
        self.row += 1

    def finish(self) -> None:
        self.book.close()
        self.handle.seek(0)
