"""From a scale's readings to sales: stable weights, one per item, tare, and the serial port.

:class:`Weigher` decides when readings (:mod:`scanners.scales`) are a weight to sell; :class:`SerialScale`
reads a scale on a serial port with pyserial, on a thread of its own; :class:`ScaleConfig` is how the
stall's scale is connected (``trace-scan scale set``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from scanners.scales import FORMATS, Framer, Reading, ScaleError, to_kilograms

Output = Literal["continuous", "demand"]


@dataclass(frozen=True)
class Weighed:
    """A weight to sell (net of tare), or a reason the scale's output cannot be used now."""

    kilograms: Decimal | None
    message: str = ""
    message_zh: str = ""
    reading: Reading | None = None

    @property
    def ok(self) -> bool:
        return self.kilograms is not None


@dataclass
class Weigher:
    """Turns readings into one weight per item put on the pan.

    ``demand`` (the scale sends a frame when its print key is pressed, or a line is typed): every frame
    is a weight, refused when the scale says it is not stable. ``continuous`` (the scale streams many
    frames a second): a weight counts once it is stable (the scale's flag, or ``settle`` equal readings in
    a row when its format has no flag), and only once: the next weight counts after the pan is emptied
    (the weight falls back within ``zero_band`` of zero).

    ``tare_kg`` is taken off gross readings (a net ``NT`` reading already has the scale's own tare off).
    """

    output: Output = "continuous"
    min_kg: Decimal = Decimal("0.005")
    zero_band: Decimal = Decimal("0.002")
    settle: int = 3
    tare_kg: Decimal = Decimal(0)
    last: Reading | None = None
    _armed: bool = True
    _recent: deque[Decimal] = field(default_factory=lambda: deque(maxlen=16))

    def net(self, reading: Reading) -> Decimal:
        return reading.kilograms if reading.net else reading.kilograms - self.tare_kg

    def feed(self, reading: Reading) -> Weighed | None:
        """A weight to sell, a refusal to show, or None (nothing to do yet)."""
        self.last = reading
        if self.output == "demand":
            return self._demand(reading)
        return self._continuous(reading)

    def _demand(self, reading: Reading) -> Weighed:
        if reading.overload:
            return Weighed(None, "the scale is out of its range", "秤超出量程", reading)
        if reading.stable is False:
            return Weighed(None, "the weight is not stable yet: weigh again", "重量未稳定，请稍候再称", reading)
        weight = self.net(reading)
        if weight < self.min_kg:
            return Weighed(
                None,
                f"{weight} kg is below the smallest weight sold ({self.min_kg} kg)",
                f"重量 {weight} kg 过小（最小 {self.min_kg} kg），请放上商品再称",
                reading,
            )
        return Weighed(weight, reading=reading)

    def _continuous(self, reading: Reading) -> Weighed | None:
        weight = self.net(reading)
        if reading.overload:
            self._recent.clear()
            return None
        if abs(weight) <= self.zero_band or (reading.net is not True and abs(reading.kilograms) <= self.zero_band):
            self._armed = True
            self._recent.clear()
            return None
        self._recent.append(reading.kilograms)
        if not self._armed or weight < self.min_kg:
            return None
        if reading.stable is None:
            tail = list(self._recent)[-self.settle :]
            if len(tail) < self.settle or len(set(tail)) != 1:
                return None
        elif not reading.stable:
            return None
        self._armed = False
        return Weighed(weight, reading=reading)

    def set_tare(self, kilograms: Decimal | None = None) -> Decimal:
        """Set the tare to ``kilograms``, or to the last gross reading (the container on the pan)."""
        if kilograms is None:
            if self.last is None or self.last.net:
                raise ScaleError(
                    "no gross weight from the scale to take as tare",
                    message_zh="没有读到秤上的毛重，无法去皮：请先把容器放上秤",
                    code="no_reading",
                )
            kilograms = self.last.kilograms
        if kilograms < 0:
            raise ScaleError("a tare cannot be negative", message_zh="皮重不能为负数", code="tare")
        self.tare_kg = kilograms
        self._armed = True
        self._recent.clear()
        return kilograms


# -- the serial port ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleConfig:
    """How the stall's scale is connected and what it sends (``trace-scan scale set``)."""

    port: str
    """A device (``/dev/ttyUSB0``, ``COM3``) or a pyserial URL (``socket://10.0.0.9:4001``, ``rfc2217://…``)."""
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    format: str = "auto"
    unit: str = "kg"
    output: Output = "continuous"
    min_kg: Decimal = Decimal("0.005")

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"scale format must be one of {', '.join(FORMATS)}")
        to_kilograms(Decimal(1), self.unit)
        if self.output not in ("continuous", "demand"):
            raise ValueError("scale output must be continuous or demand")
        if self.parity not in ("N", "E", "O", "M", "S"):
            raise ValueError("parity must be N, E, O, M or S")
        if self.bytesize not in (5, 6, 7, 8) or self.stopbits not in (1, 1.5, 2):
            raise ValueError("bytesize must be 5 to 8 and stopbits 1, 1.5 or 2")

    def as_json(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
            "format": self.format,
            "unit": self.unit,
            "output": self.output,
            "minKg": str(self.min_kg),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScaleConfig:
        return cls(
            port=str(data["port"]),
            baudrate=int(data.get("baudrate", 9600)),
            bytesize=int(data.get("bytesize", 8)),
            parity=str(data.get("parity", "N")),
            stopbits=float(data.get("stopbits", 1)),
            format=str(data.get("format", "auto")),
            unit=str(data.get("unit", "kg")),
            output="demand" if data.get("output") == "demand" else "continuous",
            min_kg=Decimal(str(data.get("minKg", "0.005"))),
        )

    def weigher(self) -> Weigher:
        return Weigher(output=self.output, min_kg=self.min_kg)


class SerialScale:
    """Frames from a scale on a serial port, read on a thread of their own (pyserial is blocking)."""

    def __init__(self, config: ScaleConfig, *, quiet_after: float = 0.15) -> None:
        import serial  # pyserial; imported here so a station without a scale never needs a port

        self.config = config
        self.quiet_after = quiet_after
        try:
            self.port = serial.serial_for_url(
                config.port,
                baudrate=config.baudrate,
                bytesize=config.bytesize,
                parity=config.parity,
                stopbits=config.stopbits,
                timeout=0.05,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ScaleError(
                f"cannot open the scale's port {config.port}: {exc}",
                message_zh=f"无法打开秤的串口 {config.port}：请检查连线和端口名",
                code="port",
            ) from None
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()
        self.port.close()

    def frames(self) -> Iterator[str]:
        """Frames as they arrive, until :meth:`close`; a partial frame is flushed when the line goes quiet."""
        framer = Framer()
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            try:
                data = self.port.read(256)
            except Exception as exc:  # a port that vanished (USB unplugged) raises pyserial's own errors
                if self._stop.is_set():
                    return
                raise ScaleError(
                    f"the scale's port {self.config.port} failed: {exc}",
                    message_zh="秤的串口断开：请检查连线",
                    code="port",
                ) from None
            if data:
                quiet_since = time.monotonic()
                yield from framer.feed(data)
            elif time.monotonic() - quiet_since > self.quiet_after:
                yield from framer.flush()

    def run(self, on_frame: Callable[[str], object], on_error: Callable[[ScaleError], object]) -> threading.Thread:
        """Read on a daemon thread, calling ``on_frame`` for each frame (from that thread)."""

        def loop() -> None:
            try:
                for frame in self.frames():
                    on_frame(frame)
            except ScaleError as exc:
                on_error(exc)

        thread = threading.Thread(target=loop, name="scale", daemon=True)
        thread.start()
        return thread
