"""Device emulators: the simulated monitor's displayed values as each protocol's bytes.

Owns: ``GeS5Emulator`` (waits for the host's request record, decoded with
``chairside.drivers.ge_s5.RequestDecoder``, then sends a displayed-values record at the
requested interval; a zero interval stops it), ``MasimoEmulator`` (an ASCII 1 line a
second with EXC bits for probe off, pulse search, low perfusion and motion, and the
oximeter's own ALARM bits with its alarm delay), ``Hl7Emulator`` (IHE PCD-01 ORU^R01 at a
fixed cadence, NIBP only after a new cuff result with OBX-14 = the measurement time; a
final failure sends empty NIBP values), and
``make_emulator``. All bytes come from the drivers' encoders; none is hand-built here.
A cable disconnect makes every emulator silent.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from simulators.devices import Display

if TYPE_CHECKING:  # pragma: no cover
    from simulators.engine import Simulation

EMULATORS = ("ge-s5", "masimo", "hl7")

# Masimo ASCII 1 EXC and ALARM bits (../shared/vectors/README.md, masimo/ascii-samples.txt)
EXC_LOW_PERFUSION = 0x004
EXC_PULSE_SEARCH = 0x008
EXC_SENSOR_OFF = 0x020
EXC_LOW_SIQ = 0x400
ALARM_SPO2_LOW = 0x0002
ALARM_PR_HIGH = 0x0004
ALARM_PR_LOW = 0x0008
ALARM_ACTIVE = 0x0010


class Emulator:
    name = ""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.start: datetime = sim.start
        self.sent = 0  # records / lines / messages sent
        self.values: list[tuple[float, dict[str, Any]]] = []  # what was encoded (when sim.record)

    def receive(self, data: bytes) -> None:
        """Bytes written by the host."""

    def tick(self, t: float, d: Display) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _when(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)


class GeS5Emulator(Emulator):
    name = "ge-s5"

    def __init__(self, sim: Simulation, auto_request: bool = True) -> None:
        super().__init__(sim)
        from chairside.drivers import ge_s5

        self._encode = ge_s5.encode_displayed_values
        self._decoder = ge_s5.RequestDecoder()
        self.interval: float | None = float(sim.device_cfg["ge_s5"]["interval_s"]) if auto_request else None
        self._next = sim.t + (self.interval or 0.0)
        self._epoch = int(self.start.timestamp())

    def receive(self, data: bytes) -> None:
        for iv in self._decoder.feed(data):
            if iv <= 0:
                self.interval = None
                self.sim._emit("host_request", "stop displayed values", "host")
            else:
                self.interval = float(iv)
                self._next = self.sim.t + 1.0  # first record at the next second
                self.sim._emit("host_request", f"displayed values every {iv} s", "host")

    def tick(self, t: float, d: Display) -> bytes:
        if self.interval is None or d.disconnected or t < self._next:
            return b""
        self._next = t + self.interval
        values = {"hr": d.hr, "nibp_sys": d.nibp_sys, "nibp_dia": d.nibp_dia, "nibp_mean": d.nibp_map,
                  "spo2": d.spo2, "pr": d.pr}
        if self.sim.record:
            self.values.append((t, values))
        self.sent += 1
        return self._encode(time=self._epoch + int(t), **{k: (None if v is None else float(v))
                                                           for k, v in values.items()})


class MasimoEmulator(Emulator):
    name = "masimo"

    def __init__(self, sim: Simulation, auto_request: bool = True) -> None:
        super().__init__(sim)
        from chairside.drivers import masimo

        self._encode = masimo.encode_line
        cfg = sim.device_cfg
        self.interval = float(cfg["masimo"]["interval_s"])
        self.sn = str(cfg["masimo"]["serial_number"])
        self._sp = cfg["spo2"]
        self._next = sim.t + self.interval
        self._low_since: float | None = None
        self._pr_since: float | None = None

    def _alarm(self, t: float, d: Display) -> int:
        sp = self._sp
        bits = 0
        if d.spo2 is not None and d.spo2 < sp["low_limit_pct"]:
            self._low_since = t if self._low_since is None else self._low_since
            if t - self._low_since >= sp["alarm_delay_s"]:
                bits |= ALARM_SPO2_LOW
        else:
            self._low_since = None
        pr_bit = 0
        if d.pr is not None and d.pr > sp["pr_high_bpm"]:
            pr_bit = ALARM_PR_HIGH
        elif d.pr is not None and d.pr < sp["pr_low_bpm"]:
            pr_bit = ALARM_PR_LOW
        if pr_bit:
            self._pr_since = t if self._pr_since is None else self._pr_since
            if t - self._pr_since >= sp["alarm_delay_s"]:
                bits |= pr_bit
        else:
            self._pr_since = None
        if bits:
            bits |= ALARM_ACTIVE
        return bits

    def tick(self, t: float, d: Display) -> bytes:
        if d.disconnected or t < self._next:
            return b""
        self._next = t + self.interval
        exc = 0
        if d.probe_off:
            exc |= EXC_SENSOR_OFF
        elif d.pulse_search:
            exc |= EXC_PULSE_SEARCH
        else:
            if d.low_perfusion:
                exc |= EXC_LOW_PERFUSION
            if d.motion:
                exc |= EXC_LOW_SIQ
        alarm = self._alarm(t, d)
        values = {"spo2": d.spo2, "bpm": d.pr, "pi": d.pi, "exc": exc, "alarm": alarm}
        if self.sim.record:
            self.values.append((t, values))
        self.sent += 1
        return self._encode(when=self._when(t), spo2=None if d.spo2 is None else float(d.spo2),
                            bpm=None if d.pr is None else float(d.pr), pi=d.pi, exc=exc, alarm=alarm, sn=self.sn)


class Hl7Emulator(Emulator):
    name = "hl7"

    def __init__(self, sim: Simulation, auto_request: bool = True) -> None:
        super().__init__(sim)
        from chairside.drivers import hl7

        self._encode = hl7.encode_oru_r01
        self.interval = float(sim.device_cfg["hl7"]["interval_s"])
        self._next = sim.t + self.interval
        self._nibp_pending = None

    def tick(self, t: float, d: Display) -> bytes:
        res = d.nibp_result
        if res is not None and (res.ok or d.nibp_failed):
            # the newest cuff result goes in the next message; a failed attempt only once the
            # automatic retry has failed too (then empty NIBP values, OBX-11 X, at that time)
            self._nibp_pending = res
        if d.disconnected or t < self._next:
            return b""
        self._next = t + self.interval
        values: dict[str, float | None] = {
            "hr": None if d.hr is None else float(d.hr),
            "pr": None if d.pr is None else float(d.pr),
            "spo2": None if d.spo2 is None else float(d.spo2),
        }
        nibp_time = None
        res = self._nibp_pending
        if res is not None:
            self._nibp_pending = None
            values["nibp_sys"], values["nibp_dia"], values["nibp_map"] = res.sys, res.dia, res.map
            nibp_time = self._when(res.t)
        if self.sim.record:
            self.values.append((t, dict(values, nibp_t=None if res is None else res.t)))
        self.sent += 1
        return self._encode(when=self._when(t), values=values, nibp_time=nibp_time,
                            control_id=f"SIM{self.sent:08d}", mllp=True)


_CLASSES = {"ge-s5": GeS5Emulator, "masimo": MasimoEmulator, "hl7": Hl7Emulator}


def make_emulator(name: str, sim: Simulation, auto_request: bool = True) -> Emulator:
    try:
        cls = _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown driver {name!r}; choose one of: {', '.join(EMULATORS)}") from None
    return cls(sim, auto_request=auto_request)
