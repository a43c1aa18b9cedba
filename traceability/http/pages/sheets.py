"""A console page's table as a spreadsheet: ``?format=csv`` or ``?format=xlsx`` at the page's own URL.

Both hold the same cells, headers in the reader's language. Times are Beijing time with the offset
written out (``2026-11-30 10:00:00+08:00``); in XLSX they are real date-times (sortable, filterable)
whose number format shows the offset, and numbers are numbers.

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some
read a tab or carriage return first) as a formula. XLSX cells are written with the string type, so
nothing is added to them. CSV has no types: such a cell gets a zero-width space (U+200B) in front,
which no spreadsheet shows and which keeps the cell text; numbers (``-3.5``) are left alone.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from traceability import i18n
from traceability.services.views.tables import Cell, Table

FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
RISKY = ("=", "+", "-", "@", "\t", "\r")
GUARD = "\u200b"
TIME_FORMAT = 'yyyy-mm-dd hh:mm:ss"+08:00"'
DAY_FORMAT = "yyyy-mm-dd"


def csv_text(value: Cell) -> str:
    """One cell as CSV text: times with their offset, numbers as written, risky text guarded."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    text = str(value)
    return GUARD + text if text.startswith(RISKY) else text


def to_csv(table: Table, t: i18n.Words) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([csv_text(h) for h in table.headers(t)])
    for row in table.rows:
        w.writerow([csv_text(v) for v in row])
    # Spreadsheet programs open UTF-8 CSV correctly only with a byte-order mark.
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(table: Table, t: i18n.Words) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(t(table.title)[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def header(text: str) -> Any:
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        cell.font = bold
        return cell

    sheet.append([header(h) for h in table.headers(t)])
    for row in table.rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_cell(sheet: Any, value: Cell) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value.replace(tzinfo=None))
        cell.number_format = TIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DAY_FORMAT
        return cell
    if isinstance(value, Decimal | int):
        return WriteOnlyCell(sheet, value=value)
    cell = WriteOnlyCell(sheet, value=str(value))
    cell.data_type = "s"  # never a formula, whatever it starts with
    return cell


def response(table: Table, fmt: str, t: i18n.Words, headers: dict[str, str]) -> web.Response:
    """The spreadsheet as a download named after the table, in the reader's language."""
    body = to_csv(table, t) if fmt == "csv" else to_xlsx(table, t)
    name = f"{table.filename}.{fmt}"
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name)  # the header is Latin-1; filename* carries the real name
    disposition = f'attachment; filename="{plain}"'
    if plain != name:
        disposition += f"; filename*=UTF-8''{quote(name)}"
    return web.Response(
        body=body,
        content_type=FORMATS[fmt],
        charset="utf-8" if fmt == "csv" else None,
        headers={**headers, "Content-Disposition": disposition, "Content-Language": t.html_lang},
    )
