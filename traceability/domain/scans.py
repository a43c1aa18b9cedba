"""Classify one line typed by a barcode gun (keyboard wedge) or a person at a keypad.

:func:`parse_scan` turns the line into a :class:`Scan` whose ``kind`` says what was read:

=================  =====================================================================================
``trace_code``     one of our 20-digit trace codes, check digit verified (:mod:`traceability.domain.tracecode`)
``trace_url``      our consumer page URL, ``{base_url}/t/{trace_code}``, from a QR code
``gs1``            a GS1 element string (GS1-128, GS1 DataMatrix, GS1 QR), or a bare GTIN-8/12/13/14 or SSCC
``digital_link``   a GS1 Digital Link URL (path keys 01 → 22 → 10 → 21, AIs in the query)
``drug_code``      a Chinese drug trace code (一物一码): by default 20 digits starting with 8
``quantity``       a weight or count typed at the keypad, e.g. ``12.5``, ``12.5kg``, ``3斤``, ``3 箱``
=================  =====================================================================================

Anything else raises :class:`ScanError`, and nothing else is ever raised for any input string::

    ScanError(ValueError)     .code (stable, e.g. "check_digit"), .message (English), .message_zh (中文)

What a wedge scanner types is cleaned before it is classified, in this order: Unicode NFKC (full-width
digits and letters from a Chinese IME become ASCII, ``㎏`` becomes ``kg``); the spellings scanners use for
FNC1 (``<GS>``, ``[GS]``, ``{GS}``, a literal ``\\x1d``, ``␝``, ``<FNC1>``) become the GS character (ASCII 29);
surrounding white space and CR/LF are stripped; an AIM symbology identifier prefix (``]C1``, ``]d2``,
``]Q3``, ``]E0``, …) is removed and kept in :attr:`Scan.symbology`. Other control characters are refused.

Ambiguities are settled so that a mistyped trace code is never taken for something else that looks valid:

* A bare 20-digit number is only ever a trace code or a drug code. If it passes our check digit it is a
  trace code (and :attr:`Scan.drug_code` is also filled in when the drug rule matches, since 1 in 10 drug
  codes pass our check by chance: the lookup decides). If it fails and the :class:`DrugCodeRule` matches,
  it is a drug code; otherwise it is refused with the reason.
* A bare 8, 12, 13 or 14-digit number is a GTIN, a bare 18-digit number an SSCC (check digits verified).
  Other bare digit strings longer than 6 digits must parse as a GS1 element string that holds an identifier
  (GTIN, SSCC or GLN). With a GS1 symbology identifier, a GS separator or the ``(AI)`` form, any complete
  GS1 element string is accepted.
* Up to 6 digits with an optional unit is a quantity (the grammar below).

Quantity grammar (after NFKC; the Chinese full stop ``。`` counts as a decimal point)::

    quantity = integer [ "." fraction ] [ spaces ] [ unit ]
    integer  = 1 to 6 digits          fraction = 1 to 3 digits
    unit     = mass unit | count unit     (ASCII units are case-insensitive)
    mass     = kg | 公斤 | 千克 → "kg";  g | 克 → "g";  t | 吨 → "t";  斤 → "斤" (0.5 kg);  两 → "两" (0.05 kg)
    count    = 件 | pcs | pc → "件";  个 只 头 箱 盒 袋 瓶 包 筐 把 捆 (kept as typed)

The amount must be more than zero; a count must be a whole number. Without a unit the quantity has
``unit=None`` and the station applies its own default (a scale sends kilograms). Mass units also give
:attr:`Quantity.kilograms`.

GS1 element strings and Digital Links are read by :mod:`traceability.domain.gs1` (biip underneath).

Both the stations (``trace-scan``) and the vendor page read scans with this module, so a line means the same
thing at a stall's scanner and in its browser; :func:`trace_code_of` is what the vendor page asks: the trace
code a scan carries, or why there is none.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import unquote, urlsplit

from biip import ParseError
from biip.symbology import GS1Symbology, SymbologyIdentifier

from traceability.domain import gs1, tracecode
from traceability.domain.gs1 import GS, GS1Data

__all__ = [
    "DrugCode",
    "DrugCodeRule",
    "GS1Data",
    "Quantity",
    "Scan",
    "ScanError",
    "ScanKind",
    "parse_scan",
    "trace_code_of",
]

ScanKind = Literal["trace_code", "trace_url", "gs1", "digital_link", "drug_code", "quantity"]

MAX_LENGTH = 2048
"""Longest line accepted, after cleaning. A QR code holds at most ~4,000 characters; a line from a wedge
scanner in a market is a code or a URL, far shorter."""

_FNC1_SPELLINGS = re.compile(r"<GS>|\[GS\]|\{GS\}|\\x1d|\\u001d|␝|<FNC1>|\[FNC1\]", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SPACED_DIGITS = re.compile(r"[0-9][0-9 \-]*[0-9]")
_DIGITS = re.compile(r"[0-9]+")
_QUANTITY = re.compile(r"(?P<int>[0-9]{1,6})(?:\.(?P<frac>[0-9]{1,3}))?\s*(?P<unit>[^0-9\s.]+)?")
_OUR_PATH = re.compile(r"/t/(?P<code>[^/]+)/?")


_MASS_UNITS: dict[str, tuple[str, Decimal]] = {
    "kg": ("kg", Decimal(1)),
    "公斤": ("kg", Decimal(1)),
    "千克": ("kg", Decimal(1)),
    "g": ("g", Decimal("0.001")),
    "克": ("g", Decimal("0.001")),
    "t": ("t", Decimal(1000)),
    "吨": ("t", Decimal(1000)),
    "斤": ("斤", Decimal("0.5")),
    "两": ("两", Decimal("0.05")),
}
_COUNT_UNITS: dict[str, str] = {
    "件": "件",
    "pcs": "件",
    "pc": "件",
    **{word: word for word in ("个", "只", "头", "箱", "盒", "袋", "瓶", "包", "筐", "把", "捆")},
}


class ScanError(ValueError):
    """A scanned or typed line that is not something a station can use; the messages say why."""

    def __init__(self, message: str, *, message_zh: str = "无法识别的内容", code: str = "unrecognized") -> None:
        self.message = message
        self.message_zh = message_zh
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class DrugCodeRule:
    """Which digit strings count as Chinese drug trace codes.

    The layout is not confirmed beyond "20 digits, the first 7 identify the drug", and one big query
    platform accepts only codes starting with 8, so all three are settings. ``prefixes=()`` turns drug
    codes off. The check character is not verified: its algorithm is not public.
    """

    length: int = 20
    prefixes: tuple[str, ...] = ("8",)
    identity_digits: int = 7

    def matches(self, digits: str) -> bool:
        return (
            len(digits) == self.length
            and _DIGITS.fullmatch(digits) is not None
            and any(digits.startswith(prefix) for prefix in self.prefixes)
        )


DEFAULT_DRUG_RULE = DrugCodeRule()


@dataclass(frozen=True)
class DrugCode:
    code: str
    identity_code: str
    """药品标识码: the first digits that identify the drug (7 by default)."""


@dataclass(frozen=True)
class Quantity:
    amount: Decimal
    """As typed, e.g. ``Decimal("12.5")``."""
    unit: str | None
    """Canonical unit (see the module docstring), or None when none was typed."""
    kilograms: Decimal | None = None
    """The amount in kilograms for a mass unit, otherwise None."""

    @property
    def is_count(self) -> bool:
        return self.unit is not None and self.kilograms is None


@dataclass(frozen=True)
class Scan:
    kind: ScanKind
    text: str
    """The cleaned text that was classified (symbology identifier removed, FNC1 as GS)."""
    symbology: str | None = None
    """The AIM symbology identifier the scanner sent, e.g. ``]C1``, or None."""
    trace_code: str | None = None
    """For trace_code and trace_url; for gs1 and digital_link when the batch is a valid trace code."""
    url: str | None = None
    """For trace_url and digital_link."""
    gs1: GS1Data | None = None
    """For gs1 and digital_link."""
    drug_code: DrugCode | None = None
    """For drug_code; also set on a trace_code that the drug rule matches too."""
    quantity: Quantity | None = None
    """For quantity."""


def parse_scan(
    text: str,
    *,
    base_urls: Sequence[str] = (),
    drug_rule: DrugCodeRule = DEFAULT_DRUG_RULE,
) -> Scan:
    """Classify one scanned or typed line; raise :class:`ScanError` saying why when it is unusable.

    ``base_urls`` are our consumer sites (e.g. ``https://trace.example.cn``). A URL with path ``/t/<code>``
    is recognised on any host; a GS1 Digital Link on one of ``base_urls`` must carry a valid trace code
    as its batch (AI 10), since that is what our labels print.
    """
    if not isinstance(text, str):
        raise ScanError("a scan is text", message_zh="扫描内容应为文本", code="not_text")
    if len(text) > MAX_LENGTH:
        raise _too_long()
    cleaned = _FNC1_SPELLINGS.sub(GS, unicodedata.normalize("NFKC", text)).strip()
    if len(cleaned) > MAX_LENGTH:
        raise _too_long()
    if not cleaned:
        raise ScanError("nothing was scanned", message_zh="没有扫描到内容", code="empty")

    symbology: SymbologyIdentifier | None = None
    if cleaned.startswith("]"):
        symbology = _symbology(cleaned)
        cleaned = cleaned[len(symbology.value) :].strip()
        if not cleaned:
            raise ScanError(
                f"the scanner sent {symbology.value} and no data",
                message_zh="扫描枪只发送了条码类型标识，没有数据",
                code="empty",
            )
    for char in cleaned:
        if char != GS and unicodedata.category(char) in ("Cc", "Cs"):
            raise ScanError(
                f"the scan holds a control character (U+{ord(char):04X}); check the scanner's settings",
                message_zh="扫描内容含有控制字符，请检查扫描枪设置",
                code="control_character",
            )

    return _classify(cleaned, symbology, tuple(base_urls), drug_rule)


def trace_code_of(text: str, *, base_urls: Sequence[str] = ()) -> str:
    """The trace code a scan carries (the code itself, our page's URL, a label's Digital Link or GS1 batch).

    Raises :class:`ScanError` saying why when the scan is unusable, or is something else (code
    ``not_a_trace_code``), e.g. a product barcode without our batch or a drug code.
    """
    scan = parse_scan(text, base_urls=base_urls)
    if scan.trace_code is None:
        raise ScanError("this is not one of our trace codes", message_zh="这不是追溯码", code="not_a_trace_code")
    return scan.trace_code


def _classify(
    text: str,
    symbology: SymbologyIdentifier | None,
    base_urls: tuple[str, ...],
    drug_rule: DrugCodeRule,
) -> Scan:
    sid = symbology.value if symbology else None
    gs1_symbology = symbology.gs1_symbology if symbology else None

    if _URL.match(text):
        return _parse_url(text, sid, base_urls)
    if gs1_symbology in GS1Symbology.with_gtin():
        return _bare_gtin(_strip_add_on(text, gs1_symbology), text, sid)
    if gs1_symbology in GS1Symbology.with_gs1_messages() or text.startswith("(") or GS in text:
        return _gs1_scan(text, sid, explicit=True)

    quantity = _quantity(text)
    if quantity is not None:
        return Scan(kind="quantity", text=text, symbology=sid, quantity=quantity)

    if _SPACED_DIGITS.fullmatch(text):
        digits = re.sub(r"[ \-]", "", text)
        if len(digits) == tracecode.LENGTH:
            return _twenty_digits(digits, sid, drug_rule)
        if drug_rule.matches(digits):
            return _drug_scan(digits, sid, drug_rule)
        if digits != text:
            raise ScanError(
                f"{len(digits)} digits: a trace code has {tracecode.LENGTH}",
                message_zh=f"共{len(digits)}位数字，追溯码应为{tracecode.LENGTH}位",
                code="wrong_length",
            )
        if len(digits) in (8, 12, 13, 14):
            return _bare_gtin(digits, text, sid)
        if len(digits) == 18:
            return _bare_sscc(digits, sid)
        try:
            return _gs1_scan(digits, sid, explicit=False)
        except ScanError as exc:
            if exc.code == "unrecognized" and abs(len(digits) - tracecode.LENGTH) <= 2:
                raise ScanError(
                    f"{len(digits)} digits: a trace code has {tracecode.LENGTH}",
                    message_zh=f"共{len(digits)}位数字，追溯码应为{tracecode.LENGTH}位",
                    code="wrong_length",
                ) from None
            raise

    if text[:1].isascii() and text[:1].isdigit():
        return _gs1_scan(text, sid, explicit=False)
    raise ScanError(gs1.NOT_RECOGNISED[0], message_zh=gs1.NOT_RECOGNISED[1])


def _too_long() -> ScanError:
    return ScanError(f"the scan is longer than {MAX_LENGTH} characters", message_zh="扫描内容过长", code="too_long")


def _symbology(text: str) -> SymbologyIdentifier:
    try:
        symbology = SymbologyIdentifier.extract(text)
    except (ParseError, ValueError, IndexError):
        symbology = None
    if symbology is None or len(symbology.value) < 3:
        raise ScanError(
            f"unknown symbology identifier at the start of {text[:4]!r}",
            message_zh="开头的条码类型标识无法识别",
            code="unknown_symbology",
        )
    return symbology


def _strip_add_on(text: str, symbology: GS1Symbology | None) -> str:
    # EAN-13 with a 2- or 5-digit add-on arrives as one run of digits; the add-on is not part of the GTIN.
    if symbology is GS1Symbology.EAN_13_WITH_ADD_ON and len(text) in (15, 18):
        return text[:13]
    return text


# --- trace codes and drug codes -------------------------------------------------------------------


def _twenty_digits(digits: str, sid: str | None, drug_rule: DrugCodeRule) -> Scan:
    try:
        code = tracecode.validate(digits)
    except tracecode.TraceCodeError as exc:
        if drug_rule.matches(digits):
            return _drug_scan(digits, sid, drug_rule)
        raise _trace_code_error(digits, exc) from None
    drug = _drug_code(digits, drug_rule) if drug_rule.matches(digits) else None
    return Scan(kind="trace_code", text=digits, symbology=sid, trace_code=code, drug_code=drug)


def _trace_code_error(candidate: str, exc: tracecode.TraceCodeError) -> ScanError:
    if not _DIGITS.fullmatch(candidate):
        zh = "追溯码只含数字"
    elif len(candidate) != tracecode.LENGTH:
        zh = f"追溯码应为{tracecode.LENGTH}位数字，这里是{len(candidate)}位"
    elif not tracecode.is_area_code(candidate[: tracecode.AREA_DIGITS]):
        zh = "追溯码应以6位地区码开头（首位为1至8）"
    else:
        zh = "校验位不符：可能输错了一位数字，或两位数字前后颠倒"
    return ScanError(f"not a valid trace code: {exc}", message_zh=zh, code="invalid_trace_code")


def _drug_code(digits: str, rule: DrugCodeRule) -> DrugCode:
    return DrugCode(code=digits, identity_code=digits[: rule.identity_digits])


def _drug_scan(digits: str, sid: str | None, rule: DrugCodeRule) -> Scan:
    return Scan(kind="drug_code", text=digits, symbology=sid, drug_code=_drug_code(digits, rule))


# --- URLs -------------------------------------------------------------------------------------------


def _parse_url(text: str, sid: str | None, base_urls: tuple[str, ...]) -> Scan:
    try:
        parts = urlsplit(text)
        parts = parts._replace(scheme=parts.scheme.lower())
        host = (parts.hostname or "").lower()
    except ValueError:
        raise ScanError(
            "the scan looks like a web address but is malformed",
            message_zh="网址格式不正确",
            code="bad_url",
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ScanError(
            "only http and https web addresses are recognised",
            message_zh="只识别 http 或 https 网址",
            code="bad_url",
        )
    url = parts.geturl()
    ours = [base for base in (_split_base(b) for b in base_urls) if base is not None and base[0] == host]

    candidate = _trace_code_in_path(parts.path, [prefix for _, prefix in ours])
    if candidate is not None:
        try:
            code = tracecode.validate(candidate)
        except tracecode.TraceCodeError as exc:
            raise _trace_code_error(candidate, exc) from None
        return Scan(kind="trace_url", text=text, symbology=sid, trace_code=code, url=url)

    with _reading_gs1():
        data = gs1.read_digital_link(url)
    batch_code = _trace_code_from_batch(data.batch, required=bool(ours))
    return Scan(kind="digital_link", text=text, symbology=sid, url=url, gs1=data, trace_code=batch_code)


def _split_base(base_url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(base_url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    return (host, parts.path.rstrip("/")) if host else None


def _trace_code_in_path(path: str, prefixes: list[str]) -> str | None:
    """The trace code segment of ``/t/<code>`` under one of our path prefixes, or on any host when digits."""
    for prefix in prefixes:
        if path.startswith(prefix) and (match := _OUR_PATH.fullmatch(path[len(prefix) :])):
            return re.sub(r"[ \-]", "", unquote(match["code"]))
    match = _OUR_PATH.fullmatch(path)
    if match:
        candidate = re.sub(r"[ \-]", "", unquote(match["code"]))
        if _DIGITS.fullmatch(candidate):
            return candidate
    return None


def _trace_code_from_batch(batch: str | None, *, required: bool) -> str | None:
    if batch is not None and tracecode.is_valid(batch):
        return tracecode.validate(batch)
    if required:
        raise ScanError(
            "a GS1 Digital Link from our site must carry a valid trace code as its batch (AI 10)",
            message_zh="本平台的 GS1 数字链接应以有效追溯码作为批号（AI 10）",
            code="invalid_trace_code",
        )
    return None


# --- GS1 --------------------------------------------------------------------------------------------


def _gs1_scan(text: str, sid: str | None, *, explicit: bool) -> Scan:
    with _reading_gs1():
        data = gs1.read_element_string(text, explicit=explicit)
    code = _trace_code_from_batch(data.batch, required=False)
    return Scan(kind="gs1", text=text, symbology=sid, gs1=data, trace_code=code)


def _bare_gtin(digits: str, text: str, sid: str | None) -> Scan:
    with _reading_gs1():
        data = gs1.read_gtin(digits)
    return Scan(kind="gs1", text=text, symbology=sid, gs1=data)


def _bare_sscc(digits: str, sid: str | None) -> Scan:
    with _reading_gs1():
        data = gs1.read_sscc(digits)
    return Scan(kind="gs1", text=digits, symbology=sid, gs1=data)


@contextlib.contextmanager
def _reading_gs1() -> Iterator[None]:
    """GS1's errors, as the ScanError :func:`parse_scan` promises (same messages and code)."""
    try:
        yield
    except gs1.GS1Error as exc:
        raise ScanError(exc.message, message_zh=exc.message_zh, code=exc.code) from None


# --- quantities -------------------------------------------------------------------------------------


def _quantity(text: str) -> Quantity | None:
    match = _QUANTITY.fullmatch(text.replace("。", "."))
    if match is None:
        return None
    amount = Decimal(match["int"] + (f".{match['frac']}" if match["frac"] else ""))
    word = match["unit"]
    unit: str | None = None
    kilograms: Decimal | None = None
    if word is not None:
        key = word.lower()
        if key in _MASS_UNITS:
            unit, factor = _MASS_UNITS[key]
            kilograms = amount * factor
        elif key in _COUNT_UNITS:
            unit = _COUNT_UNITS[key]
            if match["frac"] is not None and int(match["frac"]) != 0:
                raise ScanError(
                    f"a count of {unit} is a whole number",
                    message_zh=f"以“{unit}”计数应为整数",
                    code="bad_quantity",
                )
        else:
            return None
    if amount == 0:
        raise ScanError("a quantity must be more than zero", message_zh="数量必须大于零", code="bad_quantity")
    return Quantity(amount=amount, unit=unit, kilograms=kilograms)
