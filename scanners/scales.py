"""Weights from stall and bench scales: the frames they send, exact units, stable weights and tare.

A scale talks over RS-232 (a USB-serial adapter at the stall) in one of a few families of frames. The
station reads them with pyserial (:class:`scanners.weighing.SerialScale`), cuts the byte stream into
frames (:class:`Framer`), reads each frame (:func:`parse_frame`) and decides when a weight is a sale
(:class:`scanners.weighing.Weigher`). A line typed at the keyboard or sent by a scale in keyboard mode
goes through the same :func:`parse_frame`.

===================  ==========================================================================================
``st``               ``ST,GS,+  0.500kg`` and its relatives (A&D, Tiger, Selleton, Dini Argeo, most Chinese
                     indicators): status ``ST`` stable, ``US`` unstable, ``OL``/``UL`` out of range, ``QT`` a
                     count; optional ``GS`` gross / ``NT`` net; sign; value; optional comma; unit. CR LF ends it.
``yaohua-reversed``  Yaohua-family continuous format 1 (XK3190-A23P, -A26, -A27 …): ``=`` then the display,
                     decimal point included, **lowest digit first** and the sign (``0`` or ``-``) last; frames
                     follow each other with no line end. Display 3.000 is sent ``=000.3000``; -1.00 is
                     ``=00.1000-``; 0.5000 (a four-decimal display) is ``=0005.000``.
``yaohua``           the same family's format 2: ``=`` then sign and display in reading order (``=0003.000``).
``a9``               XK3190-A9 continuous mode (tF=0): STX, sign, six digits, the number of decimals, an XOR
                     check of those eight bytes as two hex characters, ETX (``\\x02+00326001C\\x03`` = 3260).
``plain``            a number with or without a unit: ``0.5``, ``+ 0.500 kg``, ``500g``, ``1.2斤``, ``1公斤``.
===================  ==========================================================================================

``auto`` (the default) tells the families apart by their first characters; a frame starting with ``=`` is
read as ``yaohua-reversed``, because nothing in such a frame says which way round it is: a scale set to
format 2 needs ``--format yaohua`` (``trace-scan scale test`` shows the weight read, to compare with the
scale's display when setting up).

Units are converted exactly, with :class:`~decimal.Decimal`: kg, 公斤 and 千克 are 1 kg, 斤 (jin) is 0.5 kg,
两 0.05 kg, g and 克 0.001 kg, lb 0.45359237 kg and oz 0.028349523125 kg (their legal definitions). A
number without a unit is in the scale's configured unit (kg unless set). Counts (``PC``) are not weights.

Errors::

    ScaleError(ValueError)   .code (stable), .message (English), .message_zh (中文)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Literal

__all__ = [
    "FORMATS",
    "UNITS",
    "Framer",
    "Reading",
    "ScaleError",
    "parse_frame",
    "to_kilograms",
]

Format = Literal["auto", "st", "yaohua-reversed", "yaohua", "a9", "plain"]
FORMATS: tuple[str, ...] = ("auto", "st", "yaohua-reversed", "yaohua", "a9", "plain")
Output = Literal["continuous", "demand"]

STX, ETX = "\x02", "\x03"

UNITS: dict[str, Decimal] = {
    "kg": Decimal(1),
    "公斤": Decimal(1),
    "千克": Decimal(1),
    "g": Decimal("0.001"),
    "克": Decimal("0.001"),
    "斤": Decimal("0.5"),
    "jin": Decimal("0.5"),
    "两": Decimal("0.05"),
    "t": Decimal(1000),
    "吨": Decimal(1000),
    "lb": Decimal("0.45359237"),
    "oz": Decimal("0.028349523125"),
}
"""Kilograms per unit, exact (the pound and the ounce by their international definitions)."""

_UNIT_ALIASES = {"kgs": "kg", "gr": "g", "lbs": "lb", "jn": "jin", "catty": "jin"}
_COUNT_UNITS = frozenset({"pc", "pcs", "件", "个"})

_ST = re.compile(
    r"(?:\d{2})?(?P<status>ST|US|OL|UL|QT|TL)\s*,\s*(?:(?P<kind>GS|NT|TR|GW|NW|TW)\s*,\s*)?"
    r"(?P<sign>[+\-]?)\s*(?P<number>[0-9.]+)\s*,?\s*(?P<unit>[^\s0-9,.+\-]+)?",
    re.IGNORECASE,
)
_PLAIN = re.compile(
    r"(?P<sign>[+\-]?)\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[^\s0-9.+\-?]+)?(?:\s*(?P<flag>[?]))?"
)
_A9 = re.compile(r"(?P<sign>[+\-])(?P<digits>[0-9]{6})(?P<decimals>[0-4])(?P<check>[0-9A-F]{2})")
_EQ = re.compile(r"=(?P<body>[0-9.\- ]{2,12})")


class ScaleError(ValueError):
    """A frame that is not a weight the station can use; the messages say why."""

    def __init__(self, message: str, *, message_zh: str, code: str = "unreadable") -> None:
        self.message = message
        self.message_zh = message_zh
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Reading:
    """One frame from the scale, read."""

    kilograms: Decimal
    """Signed weight in kilograms, exact (as many decimals as the scale sent)."""
    stable: bool | None
    """True or False when the scale says so; None when its format carries no stability flag."""
    net: bool | None = None
    """True for a net weight (the scale's own tare taken off), False for gross, None unknown."""
    overload: bool = False
    """Over or under the scale's range: never a weight to sell."""
    text: str = ""
    """The frame as received, for ``trace-scan scale test``."""


def to_kilograms(amount: Decimal, unit: str) -> Decimal:
    """``amount`` of ``unit`` in kilograms, exactly; ScaleError for a unit that is not a mass."""
    key = _UNIT_ALIASES.get(unit.strip().lower(), unit.strip().lower())
    if key in UNITS:
        return amount * UNITS[key]
    if key in _COUNT_UNITS:
        raise ScaleError(
            f"the scale sent a count ({unit}), not a weight",
            message_zh=f"秤发送的是计数（{unit}），不是重量：请把秤切换到称重模式",
            code="count",
        )
    raise ScaleError(
        f"unknown unit {unit!r}: use kg, g, 斤, 两, lb or oz",
        message_zh=f"无法识别的单位“{unit}”：应为 kg、g、斤、两、lb 或 oz",
        code="unit",
    )


def _number(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _unreadable(text) from None
    if not value.is_finite():
        raise _unreadable(text)
    return value


def _unreadable(frame: str) -> ScaleError:
    shown = frame.encode("unicode_escape").decode("ascii")[:40]
    return ScaleError(
        f"not a weight the station can read: {shown!r}",
        message_zh=f"无法读取的秤数据：{shown}（请检查秤的通讯格式设置）",
    )


def parse_frame(frame: str, fmt: str = "auto", default_unit: str = "kg") -> Reading:
    """Read one frame (without its line end) in format ``fmt``; ScaleError when it is not a weight.

    ``default_unit`` is the unit of a number sent without one.
    """
    if fmt not in FORMATS:
        raise ValueError(f"scale format must be one of {', '.join(FORMATS)}")
    text = frame.strip(" \t\r\n\x00")
    if not text:
        raise ScaleError("an empty frame", message_zh="秤发送了空数据", code="empty")
    if fmt == "auto":
        if text.startswith(STX) or _A9.fullmatch(text.strip(STX + ETX)):
            fmt = "a9"
        elif text.startswith("="):
            fmt = "yaohua-reversed"
        elif _ST.fullmatch(text):
            fmt = "st"
        else:
            fmt = "plain"
    if fmt == "st":
        return _st(text, default_unit)
    if fmt in ("yaohua", "yaohua-reversed"):
        return _equals(text, reversed_digits=fmt == "yaohua-reversed", unit=default_unit)
    if fmt == "a9":
        return _a9(text, default_unit)
    return _plain(text, default_unit)


def _st(text: str, default_unit: str) -> Reading:
    m = _ST.fullmatch(text)
    if m is None:
        raise _unreadable(text)
    status = m["status"].upper()
    if status == "QT":
        raise ScaleError("the scale sent a count, not a weight", message_zh="秤发送的是计数，不是重量", code="count")
    unit = m["unit"] or default_unit
    kg = to_kilograms(_number(m["number"]), unit)
    if m["sign"] == "-":
        kg = -kg
    kind = (m["kind"] or "").upper()
    return Reading(
        kilograms=kg,
        stable=status == "ST",
        net=True if kind in ("NT", "NW") else False if kind in ("GS", "GW") else None,
        overload=status in ("OL", "UL"),
        text=text,
    )


def _equals(text: str, *, reversed_digits: bool, unit: str) -> Reading:
    m = _EQ.fullmatch(text)
    if m is None:
        raise _unreadable(text)
    body = m["body"][::-1] if reversed_digits else m["body"]
    body = body.replace(" ", "")
    if body.count("-") > 1 or ("-" in body and not body.startswith("-")):
        raise _unreadable(text)
    return Reading(kilograms=to_kilograms(_number(body), unit), stable=None, text=text)


def _a9(text: str, default_unit: str) -> Reading:
    m = _A9.fullmatch(text.strip(STX + ETX))
    if m is None:
        raise _unreadable(text)
    body = m["sign"] + m["digits"] + m["decimals"]
    check = reduce(lambda acc, ch: acc ^ ord(ch), body, 0)
    if f"{check:02X}" != m["check"]:
        raise ScaleError(
            f"the frame's check characters {m['check']} do not match its content ({check:02X}): a line fault",
            message_zh="秤数据校验不符：请检查串口线和波特率",
            code="check",
        )
    value = Decimal(int(m["digits"])).scaleb(-int(m["decimals"]))
    return Reading(kilograms=to_kilograms(-value if m["sign"] == "-" else value, default_unit), stable=None, text=text)


def _plain(text: str, default_unit: str) -> Reading:
    m = _PLAIN.fullmatch(text)
    if m is None:
        raise _unreadable(text)
    kg = to_kilograms(_number(m["number"]), m["unit"] or default_unit)
    if m["sign"] == "-":
        kg = -kg
    # OHAUS-style lines end in "?" while the weight is moving.
    return Reading(kilograms=kg, stable=False if m["flag"] else None, text=text)


# -- framing -------------------------------------------------------------------------------------


class Framer:
    """Cuts the bytes a scale sends into frames: at CR or LF, around STX … ETX, and before each ``=``.

    ``=`` frames follow each other with no line end, so a frame is complete when the next ``=`` arrives
    (or the line goes quiet: :meth:`flush`). Bytes are read as UTF-8, or GB18030 for a scale that sends
    its unit in Chinese.
    """

    def __init__(self, max_frame: int = 128) -> None:
        self._buffer = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        frames: list[str] = []
        while True:
            frame = self._next()
            if frame is None:
                break
            if frame.strip(b" \t\x00"):
                frames.append(_decode(frame))
        if len(self._buffer) > self.max_frame:  # noise without any separator: drop it, keep reading
            self._buffer.clear()
        return frames

    def _next(self) -> bytes | None:
        buf = self._buffer
        if not buf:
            return None
        if buf[0] == 0x02:  # STX … ETX
            end = buf.find(b"\x03")
            if end < 0:
                return None
            frame = bytes(buf[: end + 1])
            del buf[: end + 1]
            return frame
        cut = [i for i in (buf.find(b"\r"), buf.find(b"\n"), buf.find(b"\x02")) if i >= 0]
        if buf[0] == ord("="):
            nxt = buf.find(b"=", 1)
            if nxt >= 0:
                cut.append(nxt)
        elif (eq := buf.find(b"=")) > 0:
            cut.append(eq)
        if not cut:
            return None
        end = min(cut)
        frame = bytes(buf[:end])
        skip = end + 1 if buf[end] in b"\r\n" else end
        del buf[:skip]
        return frame if frame else b""

    def flush(self) -> list[str]:
        """The frame in progress when the line goes quiet (the last ``=`` frame of a burst)."""
        frame, self._buffer = bytes(self._buffer), bytearray()
        return [_decode(frame)] if frame.strip(b" \t\x00") else []


def _decode(frame: bytes) -> str:
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError:
        return frame.decode("gb18030", errors="replace")
