"""Scales: the frames they send (known answers from their manuals), exact units, stable weights, tare,
and a real serial port (a pseudo-terminal) carrying the streams."""

from __future__ import annotations

import fcntl
import os
import sys
import termios
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from scanners.scales import Framer, Reading, ScaleError, parse_frame, to_kilograms
from scanners.weighing import ScaleConfig, SerialScale, Weigher

KNOWN = [
    # the ST/US family: status, gross/net, sign, value, unit
    ("ST,GS,+  0.500kg", "auto", Decimal("0.500"), True, False),
    ("US,GS,+  0.480kg", "auto", Decimal("0.480"), False, False),
    ("ST,NT,-  0.120 kg", "auto", Decimal("-0.120"), True, True),
    ("ST,GS,+  1.20斤", "auto", Decimal("0.600"), True, False),
    ("01ST,GS,    0.5,kg", "auto", Decimal("0.5"), True, False),  # Dini Argeo, with a 485 address
    ("ST,+00123.45  g", "auto", Decimal("0.12345"), True, None),  # A&D, no gross/net field
    # Yaohua format 1: lowest digit first, sign last (the manual: 3.000 is =000.3000, -1.00 is =00.1000-)
    ("=000.3000", "auto", Decimal("3.000"), None, None),
    ("=00.1000-", "auto", Decimal("-1.00"), None, None),
    ("=0005.000", "yaohua-reversed", Decimal("0.5000"), None, None),
    ("=0005.00", "auto", Decimal("0.500"), None, None),
    # Yaohua format 2: reading order (3.000 is =0003.000)
    ("=0003.000", "yaohua", Decimal("3.000"), None, None),
    ("=-0001.00", "yaohua", Decimal("-1.00"), None, None),
    # XK3190-A9 continuous: STX sign six digits decimals XOR ETX
    ("\x02+00326001C\x03", "auto", Decimal("3260"), None, None),
    ("\x02+003290013\x03", "a9", Decimal("3290"), None, None),
    # plain weights, with and without units
    ("0.5", "auto", Decimal("0.5"), None, None),
    ("+ 0.500 kg", "auto", Decimal("0.500"), None, None),
    ("500g", "auto", Decimal("0.500"), None, None),
    ("1.2斤", "auto", Decimal("0.6"), None, None),
    ("1公斤", "auto", Decimal("1"), None, None),
    ("3两", "auto", Decimal("0.15"), None, None),
    ("12.73 g ?", "auto", Decimal("0.01273"), False, None),  # OHAUS: "?" while moving
]


@pytest.mark.parametrize(("frame", "fmt", "kg", "stable", "net"), KNOWN)
def test_known_frames(frame: str, fmt: str, kg: Decimal, stable: bool | None, net: bool | None) -> None:
    reading = parse_frame(frame, fmt)
    assert reading.kilograms == kg
    assert reading.stable is stable and reading.net is net


def test_the_same_frame_reads_differently_by_format_so_the_format_is_a_setting() -> None:
    # "=0.5000" is 5.0 kg read lowest digit first (the family's format 1) and 0.5 kg in reading order.
    assert parse_frame("=0.5000").kilograms == Decimal("5.0")
    assert parse_frame("=0.5000", "yaohua").kilograms == Decimal("0.5000")


def test_units_are_converted_exactly() -> None:
    assert to_kilograms(Decimal("2.5"), "斤") == Decimal("1.25")
    assert to_kilograms(Decimal("1"), "公斤") == to_kilograms(Decimal("1"), "千克") == Decimal(1)
    assert to_kilograms(Decimal("333"), "g") == Decimal("0.333")
    assert to_kilograms(Decimal("1"), "lb") == Decimal("0.45359237")
    assert parse_frame("0.7", default_unit="斤").kilograms == Decimal("0.35")
    with pytest.raises(ScaleError) as err:
        parse_frame("ST,GS,+    1.0tl")  # a tael: which one (Hong Kong, Taiwan) is not said
    assert err.value.code == "unit"
    with pytest.raises(ScaleError) as err:
        parse_frame("ST,GS,+    12PC")
    assert err.value.code == "count"
    with pytest.raises(ScaleError) as err:
        parse_frame("QT,+00012345PC")
    assert err.value.code == "count"


@pytest.mark.parametrize("bad", ["ST,GS,kg", "hello", "=", "\x02+00326001D\x03", "==", "1.2.3kg"])
def test_what_is_not_a_weight_is_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ScaleError) as err:
        parse_frame(bad)
    assert err.value.message_zh and err.value.message
    if bad.startswith("\x02"):
        assert err.value.code == "check"  # the XOR does not match: a line fault, not a weight


def test_framing_of_streams_cut_anywhere() -> None:
    stream = b"ST,GS,+  0.500kg\r\nUS,GS,+  0.4" + b"80kg\r\n=000.3000=000.3000=000.30" + b"00\x02+00326001C\x03"
    for cut in range(1, len(stream)):
        framer = Framer()
        frames = framer.feed(stream[:cut]) + framer.feed(stream[cut:]) + framer.flush()
        assert frames == [
            "ST,GS,+  0.500kg",
            "US,GS,+  0.480kg",
            "=000.3000",
            "=000.3000",
            "=000.3000",
            "\x02+00326001C\x03",
        ], cut


def readings(*frames: str, fmt: str = "auto") -> Iterator[Reading]:
    return (parse_frame(f, fmt) for f in frames)


def sales(weigher: Weigher, frames: list[str]) -> list[Decimal | None]:
    out = []
    for reading in readings(*frames):
        weighed = weigher.feed(reading)
        if weighed is not None:
            out.append(weighed.kilograms)
    return out


def test_a_continuous_stream_makes_one_sale_per_item_once_stable() -> None:
    w = Weigher(output="continuous")
    stream = (
        ["ST,GS,+  0.000kg"] * 3
        + ["US,GS,+  0.212kg", "US,GS,+  0.498kg", "US,GS,+  0.501kg"]
        + ["ST,GS,+  0.500kg"] * 10  # settled: one sale, however long it stays
        + ["US,GS,+  0.250kg", "ST,GS,+  0.000kg"]  # taken off
        + ["US,GS,+  1.010kg"]
        + ["ST,GS,+  1.005kg"] * 4
    )
    assert sales(w, stream) == [Decimal("0.500"), Decimal("1.005")]


def test_a_stream_without_a_stability_flag_counts_a_weight_after_three_equal_readings() -> None:
    w = Weigher(output="continuous")
    stream = ["=000.0000"] * 2 + ["=052.0000", "=094.0000", "=005.0000", "=005.0000", "=005.0000", "=005.0000"]
    assert sales(w, stream) == [Decimal("0.500")]


def test_on_demand_every_frame_is_a_sale_unless_unstable_or_too_light() -> None:
    w = Weigher(output="demand")
    out = [w.feed(r) for r in readings("ST,GS,+  0.500kg", "ST,GS,+  0.500kg", "US,GS,+  0.700kg", "0.001")]
    assert [o.kilograms if o else None for o in out] == [Decimal("0.500"), Decimal("0.500"), None, None]
    assert out[2] is not None and out[2].message_zh == "重量未稳定，请稍候再称"
    assert out[3] is not None and "过小" in out[3].message_zh


def test_tare_is_taken_off_gross_weights_and_not_off_net_ones() -> None:
    w = Weigher(output="demand")
    w.feed(parse_frame("ST,GS,+  0.050kg"))  # the empty bag on the pan
    assert w.set_tare() == Decimal("0.050")
    assert w.feed(parse_frame("ST,GS,+  0.550kg")).kilograms == Decimal("0.500")  # type: ignore[union-attr]
    assert w.feed(parse_frame("ST,NT,+  0.500kg")).kilograms == Decimal("0.500")  # type: ignore[union-attr]
    assert w.set_tare(Decimal(0)) == 0
    with pytest.raises(ScaleError):
        Weigher().set_tare()


class FakeScale:
    """The scale's end of a serial line: a pseudo-terminal whose other end the station opens."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.port = os.ttyname(self.slave)

    def send(self, data: bytes, *, pause: float = 0.0) -> None:
        os.write(self.master, data)
        if pause:
            time.sleep(pause)

    def unread(self) -> int:
        """Bytes sent that the station has not read yet."""
        waiting = fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(waiting, sys.byteorder)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def fake_scale() -> Iterator[FakeScale]:
    scale = FakeScale()
    yield scale
    scale.close()


def read_frames(port: SerialScale, count: int, within: float = 60.0) -> list[str]:
    """The first ``count`` frames ``port`` reads (``within``: a bound against a stall, not a judgement of speed)."""
    got: list[str] = []
    done = threading.Event()

    def on_frame(frame: str) -> None:
        got.append(frame)
        if len(got) >= count:
            done.set()

    port.run(on_frame, lambda exc: done.set())
    done.wait(within)
    port.close()
    return got


def test_a_serial_scale_streaming_st_lines(fake_scale: FakeScale) -> None:
    port = SerialScale(ScaleConfig(port=fake_scale.port, baudrate=9600))
    for line in [b"US,GS,+  0.480kg\r\n"] + [b"ST,GS,+  0.500kg\r\n"] * 3 + [b"ST,GS,+  0.000kg\r\n"]:
        fake_scale.send(line)
    frames = read_frames(port, 5)
    weigher = ScaleConfig(port=fake_scale.port).weigher()
    assert sales(weigher, frames) == [Decimal("0.500")]


def test_a_serial_scale_streaming_reversed_frames_without_line_ends(fake_scale: FakeScale) -> None:
    port = SerialScale(ScaleConfig(port=fake_scale.port, baudrate=9600, format="yaohua-reversed"))
    fake_scale.send(b"=0005.000" * 3 + b"=0005.0", pause=0.05)
    fake_scale.send(b"00")  # the last frame completes, then the line goes quiet and it is flushed
    frames = read_frames(port, 4)
    assert frames == ["=0005.000"] * 4
    assert [parse_frame(f, "yaohua-reversed").kilograms for f in frames] == [Decimal("0.5000")] * 4


def test_a_port_that_does_not_exist_is_named() -> None:
    with pytest.raises(ScaleError) as err:
        SerialScale(ScaleConfig(port="/dev/ttyNOSUCH0"))
    assert err.value.code == "port" and "/dev/ttyNOSUCH0" in err.value.message_zh
