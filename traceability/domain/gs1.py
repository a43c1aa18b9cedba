"""GS1 identifiers as a scanner reads them: element strings, Digital Link URIs, bare GTINs and SSCCs.

Parsing is done by biip; this module keeps what a station and the vendor page care about in
:class:`GS1Data` and checks what biip leaves lenient. Dates are checked by biip; a harvest date
(AI 7007) may be a single date or a ``YYMMDDYYMMDD`` range, which biip does not read, so the range is
split and each half checked by biip. Every failure is a :class:`GS1Error` whose messages say why;
:func:`traceability.domain.scans.parse_scan` reports it as a ``ScanError`` with the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from biip import ParseConfig, ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.sscc import Sscc

GS = "\x1d"
"""FNC1 as the ASCII group separator: ends each variable-length field that is not last."""

# Leniency on dates is switched off in biip only so that AI 7007 ranges reach us; every other date AI is
# checked again in _gs1_data, so no invalid date gets through.
_BIIP_CONFIG = ParseConfig(gs1_element_strings_verify_date=False)
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17", "4324", "4325", "4326", "7003", "7006", "7007"})
_IDENTIFIER_AIS = frozenset({"00", "01", "02", "414"})
_NET_WEIGHT_KG_AIS = tuple(f"310{n}" for n in range(6))
NOT_RECOGNISED = (
    "not recognised: expected a trace code, a QR code URL, a GS1 barcode, a drug code or a quantity such as 12.5kg",
    "无法识别：应为追溯码、二维码网址、GS1条码、药品追溯码，或数量（如 12.5kg）",
)
"""The English and Chinese messages for a scan that is none of the things a station reads."""


class GS1Error(ValueError):
    """GS1 data that does not parse or whose check digits or dates are wrong; the messages say why."""

    def __init__(self, message: str, *, message_zh: str, code: str) -> None:
        self.message = message
        self.message_zh = message_zh
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class GS1Data:
    """The GS1 Application Identifiers a station cares about, plus every element as read."""

    elements: tuple[tuple[str, str], ...]
    """Every (AI, value) in the order read."""
    gtin: str | None = None
    """AI 01 (or a bare GTIN) as GTIN-14, check digit verified."""
    batch: str | None = None
    """AI 10 batch/lot; on our labels, our trace code."""
    serial: str | None = None
    """AI 21."""
    production_date: date | None = None
    """AI 11."""
    expiry_date: date | None = None
    """AI 17 (a day of 00 means the last day of the month)."""
    net_weight_kg: Decimal | None = None
    """AI 3100-3105."""
    sscc: str | None = None
    """AI 00, check digit verified."""
    gln: str | None = None
    """AI 414 GLN of a location, check digit verified."""
    country_of_origin: str | None = None
    """AI 422, ISO 3166 numeric (156 = China)."""
    harvest_date: date | None = None
    """AI 7007, or the first day of its range."""
    harvest_date_end: date | None = None
    """AI 7007: the last day when a range was given, else None."""

    @property
    def hri(self) -> str:
        """Human-readable form, ``(01)06901234567892(10)ABC``."""
        return "".join(f"({ai}){value}" for ai, value in self.elements)


def read_element_string(text: str, *, explicit: bool) -> GS1Data:
    """A GS1 element string, raw (FNC1 as :data:`GS`) or in the ``(AI)value`` form.

    ``explicit`` says the scan declared itself GS1 (a symbology identifier, a GS separator, the ``(AI)``
    form). When it did not (a bare run of digits), text that does not parse, or parses without an
    identifier (GTIN, SSCC or GLN), is "not recognised" rather than "bad GS1".
    """
    try:
        if text.startswith("("):
            message = GS1Message.parse_hri(text, config=_BIIP_CONFIG)
        else:
            message = GS1Message.parse(text, config=_BIIP_CONFIG)
    except (ParseError, ValueError) as exc:
        if not explicit:
            raise GS1Error(NOT_RECOGNISED[0], message_zh=NOT_RECOGNISED[1], code="unrecognized") from None
        raise GS1Error(
            f"not a valid GS1 element string: {exc}",
            message_zh="GS1 条码内容无法解析",
            code="bad_gs1",
        ) from None
    if not message.element_strings:
        raise GS1Error("the GS1 barcode holds no data", message_zh="GS1 条码没有内容", code="bad_gs1")
    data = _gs1_data(message.element_strings)
    if not explicit and not any(ai in _IDENTIFIER_AIS for ai, _ in data.elements):
        raise GS1Error(
            "not recognised: digits that are neither a trace code nor a GS1 identifier",
            message_zh="无法识别：这串数字既不是追溯码，也不是 GS1 标识",
            code="unrecognized",
        )
    return data


def read_digital_link(url: str) -> GS1Data:
    """The identifiers in a GS1 Digital Link URI (path keys 01 → 22 → 10 → 21, AIs in the query)."""
    try:
        link = GS1DigitalLinkURI.parse(url, config=_BIIP_CONFIG)
    except ParseError as exc:
        raise GS1Error(
            f"a web address that is neither a trace page nor a GS1 Digital Link ({exc})",
            message_zh="该网址不是追溯查询页，也不是 GS1 数字链接",
            code="unknown_url",
        ) from None
    return _gs1_data(link.element_strings)


def read_gtin(digits: str) -> GS1Data:
    """A bare GTIN-8, 12, 13 or 14, check digit verified, as GTIN-14."""
    try:
        gtin = Gtin.parse(digits)
    except (ParseError, ValueError) as exc:
        raise GS1Error(
            f"not a valid GTIN: {exc}", message_zh="商品条码（GTIN）无效：校验位或位数不对", code="check_digit"
        ) from None
    gtin14 = gtin.as_gtin_14()
    return GS1Data(elements=(("01", gtin14),), gtin=gtin14)


def read_sscc(digits: str) -> GS1Data:
    """A bare 18-digit SSCC, check digit verified."""
    try:
        sscc = Sscc.parse(digits)
    except (ParseError, ValueError) as exc:
        raise GS1Error(
            f"18 digits, but not a valid SSCC: {exc}",
            message_zh="18位数字，但不是有效的物流单元代码（SSCC）",
            code="check_digit",
        ) from None
    return GS1Data(elements=(("00", sscc.value),), sscc=sscc.value)


def _gs1_data(elements: Sequence[GS1ElementString]) -> GS1Data:
    seen: dict[str, str] = {}
    for element in elements:
        ai = element.ai.ai
        error = element.gtin_error or element.sscc_error or element.gln_error
        if error:
            raise GS1Error(
                f"GS1 ({ai}) {element.value}: {error}",
                message_zh=f"GS1 ({ai}) 校验位不符",
                code="check_digit",
            )
        if ai in seen and seen[ai] != element.value:
            raise GS1Error(
                f"GS1 ({ai}) appears twice with different values",
                message_zh=f"GS1 ({ai}) 出现两次且内容不同",
                code="bad_gs1",
            )
        seen[ai] = element.value

    def first(ai: str) -> GS1ElementString | None:
        return next((e for e in elements if e.ai.ai == ai), None)

    def value(ai: str) -> str | None:
        element = first(ai)
        return element.value if element else None

    def day(ai: str) -> date | None:
        element = first(ai)
        if element is None:
            return None
        if element.date is None:
            raise _bad_date(ai, element.value)
        return element.date

    for element in elements:
        if element.ai.ai in _DATE_AIS and element.ai.ai != "7007" and element.date is None:
            raise _bad_date(element.ai.ai, element.value)

    harvest, harvest_end = _harvest(first("7007"))
    weight = next((e.decimal for e in elements if e.ai.ai in _NET_WEIGHT_KG_AIS), None)
    return GS1Data(
        elements=tuple((e.ai.ai, e.value) for e in elements),
        gtin=value("01"),
        batch=value("10"),
        serial=value("21"),
        production_date=day("11"),
        expiry_date=day("17"),
        net_weight_kg=weight,
        sscc=value("00"),
        gln=value("414"),
        country_of_origin=value("422"),
        harvest_date=harvest,
        harvest_date_end=harvest_end,
    )


def _harvest(element: GS1ElementString | None) -> tuple[date | None, date | None]:
    if element is None:
        return None, None
    if element.date is not None:
        return element.date, None
    if len(element.value) == 12:
        halves = (element.value[:6], element.value[6:])
        try:
            start, end = (GS1ElementString.parse(f"7007{half}").date for half in halves)
        except ParseError:
            start = end = None
        if start is not None and end is not None and start <= end:
            return start, end
    raise _bad_date("7007", element.value)


def _bad_date(ai: str, value: str) -> GS1Error:
    return GS1Error(
        f"GS1 ({ai}) {value!r} is not a valid date (YYMMDD)",
        message_zh=f"GS1 ({ai}) 日期无效（应为 YYMMDD）",
        code="bad_date",
    )
