"""GE/Datex-Ohmeda S/5 "computer interface" driver (S/5, CARESCAPE B450/B650...): sans-I/O.

Owns: ``GeS5Driver`` (bytes -> readings), the host request record (``encode_request``,
``RequestDecoder`` for the emulator), and ``encode_displayed_values`` (one framed
physiological record, for the simulator).
Must not import: serial, sockets, threads, clocks, textual, any chairside package other
than ``chairside.domain`` and ``chairside.drivers.base``.

Wire format (../shared/vectors/README.md; Datex-Ohmeda S/5 DRI specification as read by
UN-GCPDS/python-pycollect and VSCapture): a frame is ``0x7E | record | checksum | 0x7E``;
inside a frame 0x7E/0x7D travel as ``0x7D, byte ^ 0x20``; the checksum is the 8-bit sum of
the unescaped record bytes. Every 0x7E is a delimiter: the bytes between two flags are a
frame candidate. Candidates shorter than a record header plus checksum (41 bytes) are noise
(counted in ``bytes_skipped``); longer ones whose checksum fails, or whose ``r_len`` does not
match their length, are rejected (``frames_rejected``, reason in ``stats.errors``). Bytes
before the first flag, or dropped because no flag came within ``MAX_BUFFER`` bytes, are
skipped bytes.

Decisions (documented here because the protocol leaves them to the host):

* Only the *basic* class of displayed-values subrecords is read (class = bits 8-11 of the
  u16 after the marker byte); ECG HR, NIBP sys/dia/mean, SpO2 and its pulse rate, and the
  respiration rate.
* Respiration rate: the CO2 group (at +132 after the time field: status u32, label u16,
  et, fi, rr, amb_press int16; rr in 1/min, units) names the monitor's RR source in its
  label bits 0-2 (0 not selected, 1 CO2, 2 ECG impedance; pycollect ``measures.py`` "CO2
  LBL", layout ``headers.py`` ``basic_phdb``, commit c6cfdc1). The RR the monitor shows is
  read from that source: source 1 -> ``co2.rr`` under the CO2 group's status (source
  ``co2``); source 2 -> the ECG group's ``imp_rr`` (+14, 1/min) under the ECG group's
  status (source ``ecg_impedance``); source 0 -> no RR reading. ``db00.raw`` (no CO2
  module, label 2) gives impedance RR; ``db02.raw`` (CO2 module, label 1) capnography RR.
  CO2 status bit 2 (read as "apnea" by pycollect) is set in every ``db02.raw`` record while
  RR reads 15-17/min and EtCO2 4.87 %, so it is not read as apnoea here.
* Values <= -32001 are markers, never numbers: ``value=None, valid=False`` and a flag
  ``marker:<name>`` (``marker:no_data`` for -32767 ...; unknown ones ``marker:<int>``).
* Other values go through the drivers' one validity rule (``chairside.drivers.base``,
  bounds in ``chairside/data/plausible.toml``): a negative or impossible value (an int16
  of -5, an SpO2 of 120.00) is ``value=None, valid=False`` with ``negative:<v>`` /
  ``out_of_range:<v>``.
* Group status bit 0 (exists) clear: the module is absent; no reading for its parameters,
  and a ``DeviceStatus(kind="module_absent", param=<group>)`` when that changes
  (``active=False`` when the module is back). Bit 0 set but bit 1 (active) clear: a reading
  with ``value=None, valid=False, flags=("group_inactive",)``.
* NIBP: the monitor repeats the last cuff result in every record; sys/dia/mean are emitted
  only when ``(status word, sys, dia, mean)`` differs from the last emitted one (the first
  record after start-up emits what the monitor displays). The memory survives ``reset()``
  so a reconnect does not duplicate the last measurement.
* ``device_time`` is the record header's ``r_time`` (Unix seconds, UTC).
* The host request asks for the basic class only (``phdb_class_bf = 0``) at
  ``interval_s`` seconds; a zero interval stops the stream.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import ClassVar

from chairside.domain.readings import DeviceStatus, DriverOutput, Reading
from chairside.drivers._fast import reading as _fast_reading
from chairside.drivers.base import Driver, DriverStats, SerialDefaults, check_value

# --- protocol constants (Datex-Ohmeda S/5 DRI; README of ../shared/vectors) -------------
FLAG = 0x7E
ESC = 0x7D
ESC_XOR = 0x20
HEADER_LEN = 40
MIN_FRAME = HEADER_LEN + 1  # header + checksum: anything shorter is noise
MAX_RECORD = 1490  # largest DRI record (header + 1450 data bytes)
MT_PHDB = 0  # r_maintype: physiological data
MT_WAVE = 1
MT_ALARM = 4
SR_XMIT_REQ = 0  # subrecord type of a host transmission request
SR_DISPL = 1  # subrecord type "displayed values" (DRI_PH_DISPL)
SR_EOL = 0xFF  # end of the subrecord list
PHDB_LEN = 278  # u32 time + 270 bytes of groups + marker + reserved + u16 class word
CLASS_BASIC = 0
MARKER_LIMIT = -32001  # values <= this are markers
MARKERS: dict[int, str] = {
    -32767: "no_data",
    -32766: "not_updated",
    -32765: "discontinuity",
    -32764: "under_range",
    -32763: "over_range",
    -32762: "not_calibrated",
}
MARKER_VALUES: dict[str, int] = {v: k for k, v in MARKERS.items()}
STATUS_EXISTS = 0x1
STATUS_ACTIVE = 0x2
DEFAULT_STATUS = STATUS_EXISTS | STATUS_ACTIVE
# Shortest displayed-values interval in the S/5 specification as quoted by pycollect
# ("interval ... must be an integer equal or greater to 5") and enforced by VSCapture
# (intervals 1-4 raised to 5); the pycollect/S/5 example request uses 10 s. Real monitors
# accept 1 s (db00.raw streams at 1 s), but 5 s is what every implementation agrees on.
DEFAULT_INTERVAL_S = 5

# Basic class, offsets counted after the subrecord's u32 time (README): one unpack gives
# ECG status, HR, NIBP status, sys, dia, mean, SpO2 status, SpO2, PR.
# ... then ECG imp_rr (+14), CO2 status (+132), label (+136) and rr (+142).
_BASIC = struct.Struct("<I2xh6xh56xI2xhhh34xI2xhh4xIH4xh")
assert _BASIC.size == 144
RR_SOURCE_MASK = 0x7  # CO2 group label bits 0-2: the respiration rate's source
RR_FROM_CO2 = 1
RR_FROM_IMPEDANCE = 2
_HDR = struct.Struct("<hBBHI4xh" + "hB" * 8)
assert _HDR.size == HEADER_LEN
_CLASS = struct.Struct("<H")
_I16 = struct.Struct("<h")

_GROUP_PARAMS = {"ecg": ("hr",), "nibp": ("nibp_sys", "nibp_dia", "nibp_map"), "spo2": ("spo2", "pr"),
                 "co2": ("rr",)}


def _unescape(raw: bytes) -> bytes | None:
    """Undo byte stuffing; None when the frame ends inside an escape."""
    n_esc = raw.count(b"\x7d")
    if n_esc == raw.count(b"\x7d\x5e") + raw.count(b"\x7d\x5d"):
        # the usual case: only 7E and 7D were escaped (order matters: 7D5E first)
        return raw.replace(b"\x7d\x5e", b"\x7e").replace(b"\x7d\x5d", b"\x7d")
    out = bytearray()
    parts = raw.split(b"\x7d")
    out += parts[0]
    pending_empty = False
    for part in parts[1:]:
        if pending_empty:
            # "7D 7D": the second 7D is the escaped byte
            out.append(ESC ^ ESC_XOR)
            out += part
            pending_empty = False
            continue
        if not part:
            pending_empty = True
            continue
        out.append(part[0] ^ ESC_XOR)
        out += part[1:]
    if pending_empty:
        return None  # dangling escape at the end of the frame
    return bytes(out)


def _escape(record: bytes) -> bytes:
    return record.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")


def frame(record: bytes) -> bytes:
    """``0x7E | stuffed(record + checksum) | 0x7E``."""
    return b"\x7e" + _escape(record + bytes([sum(record) & 0xFF])) + b"\x7e"


class _Deframer:
    """0x7E-delimited frames -> checked records. Bounded; counts into ``stats``."""

    def __init__(self, stats: DriverStats, max_buffer: int) -> None:
        self.stats = stats
        self.max_buffer = max_buffer
        self.buf = bytearray()
        self.in_frame = False  # a flag has been seen; buf holds the frame's bytes so far
        self.scan = 0  # bytes of buf already searched for a flag

    def reset(self) -> None:
        self.buf.clear()
        self.in_frame = False
        self.scan = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Records (unescaped, checksum verified, checksum byte removed)."""
        buf = self.buf
        buf += data
        records: list[bytes] = []
        start = 0
        find = buf.find
        pos = self.scan
        while True:
            i = find(FLAG, pos)
            if i < 0:
                break
            if self.in_frame:
                if i > start:
                    rec = self._check(bytes(buf[start:i]))
                    if rec is not None:
                        records.append(rec)
            else:
                self.stats.bytes_skipped += i - start
                self.in_frame = True
            start = pos = i + 1
        if start:
            del buf[:start]
        if len(buf) > self.max_buffer:
            # no flag within a frame's maximum size: drop and hunt for the next flag
            self.stats.bytes_skipped += len(buf)
            buf.clear()
            self.in_frame = False
        self.scan = len(buf)
        return records

    def _check(self, raw: bytes) -> bytes | None:
        stats = self.stats
        if ESC in raw:
            rec = _unescape(raw)
            if rec is None:
                stats.reject("dangling escape byte at the end of a frame")
                return None
        else:
            rec = raw
        n = len(rec)
        if n < MIN_FRAME:
            stats.bytes_skipped += len(raw)
            return None
        body = rec[:-1]
        if sum(body) & 0xFF != rec[-1]:
            stats.reject(f"checksum mismatch ({n - 1}-byte record)")
            return None
        r_len = _I16.unpack_from(body, 0)[0]
        if r_len != n - 1:
            stats.reject(f"r_len {r_len} != record length {n - 1}")
            return None
        stats.frames_decoded += 1
        return body


def _marker_name(raw: int) -> str:
    return MARKERS.get(raw, str(raw))


class GeS5Driver(Driver):
    """Displayed values (basic class) of a GE/Datex S/5-family monitor."""

    name: ClassVar[str] = "ge-s5"
    serial_defaults: ClassVar[SerialDefaults] = SerialDefaults(
        baudrate=19200, bytesize=8, parity="E", stopbits=1, rtscts=True
    )
    # A frame holds at most MAX_RECORD + 1 bytes, each possibly stuffed to two: no flag
    # within this many bytes means we are not inside a frame.
    MAX_BUFFER: ClassVar[int] = 2 * (MAX_RECORD + 1) + 64

    def __init__(self, interval_s: int = DEFAULT_INTERVAL_S) -> None:
        super().__init__()
        if not 0 <= int(interval_s) <= 32767:
            raise ValueError(f"ge-s5 interval_s must be 0..32767 seconds, got {interval_s!r}")
        self.interval_s = int(interval_s)
        self._deframer = _Deframer(self.stats, self.MAX_BUFFER)
        self._last_nibp: tuple[int, int, int, int] | None = None
        self._absent: dict[str, bool] = {"ecg": False, "nibp": False, "spo2": False, "co2": False}

    # --- contract ---------------------------------------------------------------------
    def on_connect(self) -> bytes:
        return encode_request(self.interval_s)

    def on_stream_stalled(self) -> bytes:
        return encode_request(self.interval_s)

    def reset(self) -> None:
        self._deframer.reset()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (bounded by MAX_BUFFER)."""
        return len(self._deframer.buf)

    def flush(self) -> list[DriverOutput]:
        """End of input: an unfinished frame is never a record; its bytes count as skipped."""
        self.stats.bytes_skipped += len(self._deframer.buf)
        self._deframer.reset()
        return []

    def feed(self, data: bytes) -> list[DriverOutput]:
        out: list[DriverOutput] = []
        try:
            records = self._deframer.feed(data)
        except Exception as exc:  # pragma: no cover - defensive: feed never raises
            self.stats.reject(f"internal error: {exc!r}")
            self._deframer.reset()
            return out
        for rec in records:
            try:
                self._record(rec, out)
            except Exception as exc:  # a malformed record must never stop the stream
                self.stats.reject(f"malformed record: {exc!r}")
        self.stats.readings += sum(1 for o in out if type(o) is Reading)
        return out

    # --- decoding -----------------------------------------------------------------------
    def _record(self, rec: bytes, out: list[DriverOutput]) -> None:
        hdr = _HDR.unpack_from(rec, 0)
        if hdr[5] != MT_PHDB:
            return  # waveform / alarm / network records: valid frames we do not read
        r_time = hdr[4]
        n = len(rec)
        when: datetime | None = None
        for k in range(8):
            off = hdr[6 + 2 * k]
            typ = hdr[7 + 2 * k]
            if typ == SR_EOL:
                break
            if typ != SR_DISPL:
                continue
            base = HEADER_LEN + off
            if off < 0 or base + PHDB_LEN > n:
                self.stats.errors.append(f"subrecord {k} at offset {off} runs past the record end ({n} bytes)")
                del self.stats.errors[:-20]
                continue
            cls = (_CLASS.unpack_from(rec, base + PHDB_LEN - 2)[0] >> 8) & 0x0F
            if cls != CLASS_BASIC:
                continue
            if when is None:
                when = datetime.fromtimestamp(r_time, UTC)
            self._basic(rec, base + 4, when, out)

    def _module(self, group: str, status: int, when: datetime, out: list[DriverOutput]) -> bool:
        """Track the group's exists bit; True when the group exists."""
        absent = not status & STATUS_EXISTS
        if absent != self._absent[group]:
            self._absent[group] = absent
            out.append(DeviceStatus(kind="module_absent", active=absent, param=group,
                                    detail=f"{group} group status {status:#x}", device_time=when))
        return not absent

    def _basic(self, rec: bytes, g: int, when: datetime, out: list[DriverOutput]) -> None:
        ecg_st, hr, imp_rr, nibp_st, sys_, dia, mean, spo2_st, spo2, pr, co2_st, co2_label, rr = \
            _BASIC.unpack_from(rec, g)
        ecg = self._module("ecg", ecg_st, when, out)
        if ecg:
            out.append(_reading("hr", hr, 1, "bpm", ecg_st, when, "ecg"))
        if self._module("nibp", nibp_st, when, out):
            key = (nibp_st, sys_, dia, mean)
            if key != self._last_nibp:
                self._last_nibp = key
                out.append(_reading("nibp_sys", sys_, 100, "mmHg", nibp_st, when, "nibp"))
                out.append(_reading("nibp_dia", dia, 100, "mmHg", nibp_st, when, "nibp"))
                out.append(_reading("nibp_map", mean, 100, "mmHg", nibp_st, when, "nibp"))
        if self._module("spo2", spo2_st, when, out):
            out.append(_reading("spo2", spo2, 100, "%", spo2_st, when, "spo2"))
            out.append(_reading("pr", pr, 1, "bpm", spo2_st, when, "spo2"))
        source = co2_label & RR_SOURCE_MASK
        if source == RR_FROM_CO2:
            if self._module("co2", co2_st, when, out):
                out.append(_reading("rr", rr, 1, "/min", co2_st, when, "co2"))
        elif source == RR_FROM_IMPEDANCE and ecg:
            out.append(_reading("rr", imp_rr, 1, "/min", ecg_st, when, "ecg_impedance"))


def _reading(param: str, raw: int, scale: int, unit: str, status: int, when: datetime, source: str) -> Reading:
    if not status & STATUS_ACTIVE:
        value, valid, flags = None, False, ("group_inactive",)
    elif raw <= MARKER_LIMIT:
        value, valid, flags = None, False, (f"marker:{_marker_name(raw)}",)
    else:
        value, valid, flags = (raw / scale if scale != 1 else float(raw)), True, ()
        bad = check_value(param, value)
        if bad is not None:
            value, valid, flags = None, False, (bad,)
    return _fast_reading({"param": param, "value": value, "unit": unit, "valid": valid, "flags": flags,
                          "device_time": when, "source": source})


# --- host request record -------------------------------------------------------------------
_REQ = struct.Struct("<BhIH")  # phdb_rcrd_type, tx_interval, phdb_class_bf, reserved
REQUEST_LEN = HEADER_LEN + _REQ.size  # 49


def _header(r_len: int, maintype: int, descs: list[tuple[int, int]], *, r_nbr: int = 0,
            dri_level: int = 0, r_time: int = 0) -> bytes:
    flat: list[int] = []
    for k in range(8):
        off, typ = descs[k] if k < len(descs) else (0, 0)
        flat += [off, typ]
    return _HDR.pack(r_len, r_nbr & 0xFF, dri_level, 0, r_time & 0xFFFFFFFF, maintype, *flat)


def encode_request(interval_s: int) -> bytes:
    """The framed host request for the displayed-values stream every ``interval_s`` s (0 = stop).

    Basic class only (``phdb_class_bf`` 0 = DRI_PHDBCL_REQ_BASIC_MASK, no extension bits).
    """
    interval = int(interval_s)
    if not -32768 <= interval <= 32767:
        raise ValueError(f"interval_s must fit an int16, got {interval_s!r}")
    hdr = _header(REQUEST_LEN, MT_PHDB, [(0, SR_XMIT_REQ), (0, SR_EOL)])
    return frame(hdr + _REQ.pack(SR_DISPL, interval, 0, 0))


class RequestDecoder:
    """What the host asked for, for the monitor emulator: ``feed(bytes) -> [interval_s, ...]``.

    Only displayed-values requests are reported (0 = stop); other records are ignored.
    """

    MAX_BUFFER = GeS5Driver.MAX_BUFFER

    def __init__(self) -> None:
        self.stats = DriverStats()
        self._deframer = _Deframer(self.stats, self.MAX_BUFFER)

    def feed(self, data: bytes) -> list[int]:
        out: list[int] = []
        for rec in self._deframer.feed(data):
            if len(rec) < REQUEST_LEN:
                continue
            hdr = _HDR.unpack_from(rec, 0)
            if hdr[5] != MT_PHDB or hdr[7] != SR_XMIT_REQ:
                continue
            rcrd_type, interval, _class_bf, _ = _REQ.unpack_from(rec, HEADER_LEN + hdr[6])
            if rcrd_type == SR_DISPL:
                out.append(interval)
        return out


# --- displayed-values record (for the simulator) --------------------------------------------
_DRI_LEVEL = 0x0A  # as in the captured records of ../shared/vectors/ge-s5
_CLASS_LOW = 0xA1  # low byte of the class word in the captured records
# Basic-class group starts with a 6-byte header (status u32 + label u16), per the DRI layout
# (ecg 16, p1-p4 14 each, nibp 14, t1-t4 8 each, SpO2 14, co2 14, o2 10, n2o 10, aa 12,
# flow-vol 22, co-wedge 14, nmt 12, [ecg_extra 6, no header], svo2 8, p5 14, p6 14, 2 reserved).
_BASIC_GROUP_HEADERS = (0, 16, 30, 44, 58, 72, 86, 94, 102, 110, 118, 132, 146, 156, 166, 178, 200, 214,
                        232, 240, 254)


def _to_raw(key: str, value: float | None, scale: int, markers: dict[str, int] | None) -> int:
    if markers and key in markers:
        m = markers[key]
        return MARKER_VALUES[m] if isinstance(m, str) else int(m)
    if value is None:
        return MARKER_VALUES["no_data"]
    raw = round(float(value) * scale)
    if not MARKER_LIMIT < raw <= 32767:
        raise ValueError(f"{key}={value!r} does not fit the S/5 int16 range")
    return raw


def encode_displayed_values(*, time: int, hr: float | None = None, nibp_sys: float | None = None,
                            nibp_dia: float | None = None, nibp_mean: float | None = None,
                            spo2: float | None = None, pr: float | None = None,
                            nibp_status: int | None = None, spo2_status: int | None = None,
                            ecg_status: int | None = None, rr: float | None = None,
                            rr_source: str | None = None, co2_status: int | None = None,
                            markers: dict[str, int] | None = None) -> bytes:
    """One complete framed physiological record: displayed values, all four classes.

    Values are display units (bpm, mmHg, %); None is encoded as the -32767 "no data"
    marker unless ``markers`` maps that key (``hr``, ``nibp_sys``, ``nibp_dia``,
    ``nibp_mean``, ``spo2``, ``pr``) to another marker (its int, or its name such as
    ``"not_updated"``). ``*_status`` are the group status words (default exists+active).
    ``rr_source``: None (the CO2 group "not exists", no RR source selected), ``"co2"`` (the
    CO2 group carries ``rr``) or ``"impedance"`` (the ECG group's imp_rr carries ``rr``,
    the CO2 group's label names that source). Groups we do not carry (invasive pressures,
    temperatures, other gases...) are "not exists".
    """
    t = int(time) & 0xFFFFFFFF
    basic = bytearray(270)
    no_data = _I16.pack(MARKER_VALUES["no_data"])
    for pos in range(0, 268, 2):  # every value slot "no data"; group headers cleared below
        basic[pos:pos + 2] = no_data
    for start in _BASIC_GROUP_HEADERS:  # status 0 = "not exists" for the groups we do not carry
        basic[start:start + 6] = bytes(6)
    basic[268:270] = bytes(2)  # reserved
    struct.pack_into("<I2xh", basic, 0, DEFAULT_STATUS if ecg_status is None else ecg_status,
                     _to_raw("hr", hr, 1, markers))
    struct.pack_into("<I2xhhh", basic, 72, DEFAULT_STATUS if nibp_status is None else nibp_status,
                     _to_raw("nibp_sys", nibp_sys, 100, markers), _to_raw("nibp_dia", nibp_dia, 100, markers),
                     _to_raw("nibp_mean", nibp_mean, 100, markers))
    struct.pack_into("<I2xhh", basic, 118, DEFAULT_STATUS if spo2_status is None else spo2_status,
                     _to_raw("spo2", spo2, 100, markers), _to_raw("pr", pr, 1, markers))
    if rr_source == "co2":
        struct.pack_into("<IH4xh", basic, 132, DEFAULT_STATUS if co2_status is None else co2_status,
                         RR_FROM_CO2, _to_raw("rr", rr, 1, markers))
    elif rr_source == "impedance":
        struct.pack_into("<IH", basic, 132, 0 if co2_status is None else co2_status, RR_FROM_IMPEDANCE)
        struct.pack_into("<h", basic, 14, _to_raw("rr", rr, 1, markers))
    elif rr_source is not None:
        raise ValueError(f"rr_source must be None, 'co2' or 'impedance', got {rr_source!r}")
    subs = b""
    descs = []
    for cls in range(4):
        groups = bytes(basic) if cls == CLASS_BASIC else bytes(270)
        descs.append((PHDB_LEN * cls, SR_DISPL))
        subs += struct.pack("<I", t) + groups + struct.pack("<BBH", 0, 0, (cls << 8) | _CLASS_LOW)
    descs.append((0, SR_EOL))
    r_len = HEADER_LEN + len(subs)
    # r_nbr is a rolling record number; derived from the time so the encoder stays a pure function
    hdr = _header(r_len, MT_PHDB, descs, r_nbr=t & 0xFF, dri_level=_DRI_LEVEL, r_time=t)
    return frame(hdr + subs)
