"""HL7 observations: what an IHE PCD-01 ORU^R01 OBX and a PCD-04 ORU^R40 alarm group mean.

Owns: the MDC code and unit tables, the vendor sentinels, the OBX-11/OBX-8 verdict,
``observation`` (one OBX -> a ``Reading``) and ``alarm`` (one R40 OBR group -> a
``DeviceStatus``). Framing, message checks and ACKs are ``chairside.drivers.hl7.driver``.
Must not import: anything outside stdlib and ``chairside.domain`` / ``chairside.drivers``
(sans-I/O, like every driver).

Reading (ISO/IEEE 11073 MDC code *numbers* in OBX-3, never the text; ../shared/vectors):

* NIBP 150021/150022/150023 and the cuff variants 150301/150302/150303 -> ``nibp_sys``,
  ``nibp_dia``, ``nibp_map``; ECG HR 147842 -> ``hr``; SpO2 150456 -> ``spo2``; pulse rate
  149530 -> ``pr`` (source ``spo2``), 149546 -> ``pr`` (source ``nibp``); extra: resp rate
  151562 -> ``rr``, perfusion index 150448 -> ``pi``.
* Units from OBX-6, MDC code number or text (``266016``/``MDC_DIM_MMHG``) or UCUM
  (``mm[Hg]``, ``{beat}/min``, ``%``); kPa pressures are converted to mmHg (flag
  ``converted:kPa``); an unknown unit keeps the value but marks it invalid (``unit:<text>``).
* Missing: empty OBX-5 (flag ``empty``), a vendor sentinel from
  ``chairside/data/hl7_sentinels.toml`` (flag ``sentinel:<n>``), a non-number
  (``not_numeric:<text>``: OBX-5 of an NM must be ``[sign]digits[.digits]``, so ``1_000``,
  ``1e3``, ``NaN`` and ``inf``, which Python's ``float()`` would take, are not numbers), and
  a value the drivers' one validity rule (``chairside.drivers.base.check_value``, bounds in
  ``chairside/data/plausible.toml``) calls impossible, after unit conversion
  (``negative:<v>``, ``out_of_range:<v>``, ``not_finite:<v>``).
* Result status (OBX-11, HL7 Table 0085) and measurement status (OBX-8 codes of ISO/IEEE
  11073 MeasurementStatus, IHE PCD TF-2 Appendix B.8, Tables B.8.5-6 and B.8.5-7):

  ====================================  =====================================================
  status                                 reading
  ====================================  =====================================================
  OBX-11 ``F`` ``C`` ``P`` ``R`` ``S``   a result: valid
  ``U`` or empty
  OBX-11 ``X`` with a value               **questionable**: kept, valid, flags
                                          ``questionable``, ``status:X``. Table B.8.5-6 maps
                                          11073 invalid / not-available / msmt-ongoing to
                                          ``X``, but gateways (the IHE Philips example) send
                                          ``X`` on every OBX, good values too (vectors README);
                                          with OBX-8 ``INV``/``NAV``/``BUSY`` it is invalid
  OBX-11 ``X`` without a value            missing (``empty``, ``status:X``)
  OBX-11 ``W`` ``D`` ``N`` ``O`` ``I``    not a value of the patient: invalid (``status:W``...)
  any other OBX-11 letter                 questionable (``questionable``, ``status:<c>``)
  OBX-8 ``QUES`` ``CAL`` ``EARLY``        questionable (``questionable``, ``abnormal:QUES``)
  OBX-8 ``INV`` ``NAV`` ``BUSY`` ``TEST``  invalid (``abnormal:<code>``): not a measurement of
  ``DEMO`` ``OFF`` ``NI`` ``NA`` ``MSK``  this patient now (test/demo data, being measured,
  ``OTH`` ``NAN`` ``PINF`` ``NINF``       off, a null flavour)
  ====================================  =====================================================

  A questionable value is never dropped: the alarm engine evaluates it like any valid
  value and marks an alarm it raises as raised on a questionable value. Why not a separate
  technical "questionable data" alarm: in PCD-01 a questionable measurement is still a
  reported result (11073 ``questionable`` maps to OBX-11 ``R`` + OBX-8 ``QUES``, Table
  B.8.5-6), and the physiological/technical split of an alarm follows its source (PCD-04
  OBX-8 ``SP``/``ST``, Table B.8.5-10): a limit crossed by the patient's value is a
  physiological condition, the doubt about the value is a property of it. So the alarm keeps
  its rule, priority, delay, latching and escalation, and the nurse sees that the value
  needs checking (a repeat cuff), instead of a second alarm for one condition.
* Time: OBX-14, else OBR-7 (HL7 TS with optional ``+/-ZZZZ``; without an offset the MSH-7
  offset applies, else UTC); when neither is present (OBR-7 is required by PCD-01), MSH-7,
  the message's own time, with the flag ``time:MSH-7``; None without any.
* NIBP (and pulse rate from NIBP) with an OBX-14 is emitted once per measurement: an
  observation repeating the last emitted value and OBX-14 of its parameter is skipped.
* ORU^R40: each OBR group is one alarm -> ``DeviceStatus(kind="device_alarm")`` with the
  event code/text in ``detail``, the parameter from the group's numeric OBX (or the
  containment in OBX-4), priority from OBX-8 (PH/PM/PL -> high/medium/low), phase, state
  and inactivation state in ``flags``; ``active`` False when the phase is end/stop or the
  state inactive. Emitted when the message ends.
* Escape sequences (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\Xhh\\``, HL7 v2.6 2.7.4) are decoded in the
  text fields we keep (alarm text, phase/state, unit text): ``unescape``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime
from importlib import resources

from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers._fast import reading as _reading
from chairside.drivers._fast import status as _status
from chairside.drivers.base import check_value, parse_number
from chairside.drivers.hl7.syntax import HL7_ERRORS, Message, as_text, unescape

# MDC code number -> (param, source)
CODES: dict[bytes, tuple[str, str]] = {
    b"150021": ("nibp_sys", "nibp"),
    b"150022": ("nibp_dia", "nibp"),
    b"150023": ("nibp_map", "nibp"),
    b"150301": ("nibp_sys", "nibp"),
    b"150302": ("nibp_dia", "nibp"),
    b"150303": ("nibp_map", "nibp"),
    b"147842": ("hr", "ecg"),
    b"150456": ("spo2", "spo2"),
    b"149530": ("pr", "spo2"),
    b"149546": ("pr", "nibp"),
    b"151562": ("rr", "resp"),
    b"150448": ("pi", "spo2"),
}
PARAM_UNIT: dict[str, str] = {
    "nibp_sys": "mmHg", "nibp_dia": "mmHg", "nibp_map": "mmHg", "hr": "bpm", "pr": "bpm",
    "spo2": "%", "rr": "/min", "pi": "%",
}
# OBX-6 first or second component -> canonical unit
UNITS: dict[bytes, str] = {
    b"266016": "mmHg", b"MDC_DIM_MMHG": "mmHg", b"mm[Hg]": "mmHg", b"mmHg": "mmHg",
    b"264864": "bpm", b"MDC_DIM_BEAT_PER_MIN": "bpm", b"{beat}/min": "bpm", b"{beats}/min": "bpm",
    b"/min": "bpm", b"bpm": "bpm", b"1/min": "bpm",
    b"262688": "%", b"MDC_DIM_PERCENT": "%", b"%": "%",
    b"264928": "/min", b"MDC_DIM_RESP_PER_MIN": "/min", b"{breaths}/min": "/min", b"{resp}/min": "/min",
    b"262656": "%", b"MDC_DIM_DIMLESS": "%",  # perfusion index: a relative (percent) number
    b"kPa": "kPa", b"MDC_DIM_KILO_PASCAL": "kPa",
}
# a unit acceptable for a param though not its canonical one
_UNIT_OK = {("rr", "bpm"), ("pi", "%")}
KPA_TO_MMHG = 7.500616827  # 1 kPa in mmHg (physical constant)
PRIORITIES = {b"PH": "high", b"PM": "medium", b"PL": "low", b"PN": "none"}
# IHE PCD-04 alarm attributes (MDC codes) in ORU^R40
ATTR_PHASE = b"68481"
ATTR_STATE = b"68482"
ATTR_INACTIVATION = b"68483"
_ENDED_PHASES = {"end", "stop", "reset"}
_INACTIVE_STATES = {"inactive", "off"}
MAX_ALARM_OBX = 64  # per OBR group; anything beyond is ignored
MAX_ALARM_GROUPS = 256  # OBR groups of one ORU^R40; anything beyond is ignored


def _load_sentinels() -> frozenset[float]:
    text = resources.files("chairside.data").joinpath("hl7_sentinels.toml").read_text(encoding="utf-8")
    return frozenset(float(x) for x in tomllib.loads(text)["sentinels"])


SENTINELS: frozenset[float] = _load_sentinels()


# --- OBX-11 result status and OBX-8 measurement status (IHE PCD TF-2 Appendix B.8, Table B.8.5-6) ---
_VALID, _QUESTIONABLE, _INVALID = 0, 1, 2
# HL7 Table 0085: a result (C = a correction, which is a new value here)
RESULT_STATUSES = frozenset({b"", b"F", b"C", b"P", b"R", b"S", b"U"})
# Not a value of the patient: wrong / deleted, not asked, order detail only, pending
NOT_A_RESULT_STATUSES = frozenset({b"W", b"D", b"N", b"O", b"I"})
# OBX-8 codes of ISO/IEEE 11073 MeasurementStatus and nullFlavors (Table B.8.5-6 / B.8.5-7)
OBX8_INVALID = frozenset({b"INV", b"NAV", b"BUSY", b"TEST", b"DEMO", b"OFF", b"NI", b"NA", b"MSK", b"OTH",
                          b"NAN", b"PINF", b"NINF"})
OBX8_QUESTIONABLE = frozenset({b"QUES", b"CAL", b"EARLY"})


def _status_verdict(status: bytes, abnormal) -> tuple[int, tuple[str, ...]]:
    """(valid | questionable | invalid, flags) for one OBX's OBX-11 and OBX-8 repetitions."""
    codes = [a.strip() for a in abnormal]
    bad = tuple(f"abnormal:{as_text(a)}" for a in codes if a in OBX8_INVALID)
    if status in NOT_A_RESULT_STATUSES or bad:
        return _INVALID, ((f"status:{as_text(status)}",) if status and status not in RESULT_STATUSES else ()) + bad
    ques = tuple(f"abnormal:{as_text(a)}" for a in codes if a in OBX8_QUESTIONABLE)
    if status == b"X":
        return _QUESTIONABLE, ("status:X",) + ques
    if status not in RESULT_STATUSES:
        return _QUESTIONABLE, (f"status:{as_text(status[:8])}",) + ques
    if ques:
        return _QUESTIONABLE, ques
    return _VALID, ()


def observation(msg: Message, f: list[bytes], ts: Callable[[bytes], datetime | None],
                last_nibp: dict[tuple[str, str], tuple[float | None, bytes]]) -> Reading | None:
    """The reading of one ORU^R01 OBX (fields ``f``), or None when the OBX is not one we read
    or repeats the last NIBP measurement of its parameter (``last_nibp``, kept by the driver).
    ``ts`` reads an HL7 time in the message's zone. A non-numeric OBX-5 adds an ``AE`` error
    to ``msg.errors`` (module docstring)."""
    if len(f) < 6:
        return None
    code = f[3].split(msg.cs, 1)[0].strip()
    spec = CODES.get(code)
    if spec is None:
        return None
    param, source = spec
    unit = PARAM_UNIT[param]
    raw = f[5].strip()
    status = f[11].strip() if len(f) > 11 else b""
    obs_time_raw = f[14].strip() if len(f) > 14 else b""
    when = ts(obs_time_raw) if obs_time_raw else msg.obr_time
    flags: tuple[str, ...] = ()
    if when is None and msg.msh_time is not None:
        when = msg.msh_time  # neither OBX-14 nor OBR-7: the message's own time
        flags = ("time:MSH-7",)
    value: float | None = None
    if not raw:
        flags += ("empty",)
    else:
        first = raw.split(msg.rs, 1)[0].split(msg.cs, 1)[0].strip()
        value = parse_number(first)
        if value is None:
            flags += (f"not_numeric:{unescape(first[:40], msg)}",)
            msg.errors.append(("102", HL7_ERRORS["102"], f"OBX^{msg.obx}^5",
                               f"OBX-5 {unescape(first[:40], msg)!r} of {as_text(code)} is not a number"))
        elif value in SENTINELS:
            flags += (f"sentinel:{as_text(first)}",)
            value = None
    valid = value is not None
    # OBX-11 result status and OBX-8 measurement-status codes (module docstring)
    abnormal = f[8].split(msg.rs) if len(f) > 8 and f[8] else ()
    verdict, why = _status_verdict(status, abnormal)
    if verdict == _INVALID:
        flags += why
        valid = False
    elif verdict == _QUESTIONABLE and value is not None:
        flags += ("questionable",) + why
    elif why and value is None:
        flags += why
    # unit
    units = f[6].split(msg.cs) if len(f) > 6 and f[6] else []
    if value is not None and units:
        got = UNITS.get(units[0].strip()) or (UNITS.get(units[1].strip()) if len(units) > 1 else None)
        if got is None:
            flags += (f"unit:{unescape(units[0].strip() or units[1].strip() if len(units) > 1 else units[0], msg)}",)
            valid = False
        elif got != unit and (param, got) not in _UNIT_OK:
            if got == "kPa" and unit == "mmHg":
                value = round(value * KPA_TO_MMHG, 1)
                flags += ("converted:kPa",)
            else:
                flags += (f"unit:{got}",)
                valid = False
    if value is not None:
        bad = check_value(param, value)
        if bad is not None:
            flags += (bad,)
            value = None
    if source == "nibp" and obs_time_raw:
        key = (param, source)
        mark = (value, obs_time_raw)
        if last_nibp.get(key) == mark:
            return None  # the same cuff measurement repeated
        last_nibp[key] = mark
    return _reading({"param": param, "value": value, "unit": unit, "valid": valid and value is not None,
                     "flags": flags, "device_time": when, "source": source})


def alarm(msg: Message, group: list[list[bytes]], ts: Callable[[bytes], datetime | None]) -> DeviceStatus | None:
    """The device alarm of one ORU^R40 OBR group (its OBR and OBX field lists), or None when
    the group names no alarm event (module docstring)."""
    obr = group[0] if group and group[0][0][:3] == b"OBR" else None
    obxs = group[1:] if obr is not None else group
    cs, rs = msg.cs, msg.rs
    event_code = event_text = b""
    param: str | None = None
    value: float | None = None
    priority: str | None = None
    flags: list[str] = []
    when = msg.obr_time
    for f in obxs:
        if len(f) < 4:
            continue
        ident = f[3].split(cs)
        code = ident[0].strip()
        val = f[5].strip() if len(f) > 5 else b""
        if code.startswith(b"196") and not event_code:  # MDC_EVT_* partition (alert events)
            event_code = ident[1] if len(ident) > 1 and ident[1] else code
            event_text = unescape(val, msg).encode()
            if len(f) > 8 and f[8]:
                for rep in f[8].split(rs):
                    rep = rep.strip()
                    if rep in PRIORITIES:
                        priority = PRIORITIES[rep]
                    elif rep in (b"SP", b"ST", b"SA"):
                        flags.append(f"type:{as_text(rep)}")
                    elif rep:
                        flags.append(f"abnormal:{as_text(rep)}")
            if len(f) > 14 and f[14].strip():
                when = ts(f[14].strip()) or when
            if param is None and len(f) > 4:
                parts = f[4].split(b".")
                if len(parts) >= 4 and parts[3] in CODES:
                    param = CODES[parts[3]][0]
        elif code == ATTR_PHASE:
            flags.append(f"phase:{unescape(val, msg)}")
        elif code == ATTR_STATE:
            flags.append(f"state:{unescape(val, msg)}")
        elif code == ATTR_INACTIVATION:
            flags.append(f"inactivation:{unescape(val, msg)}")
        elif code in CODES:
            param = CODES[code][0]
            value = parse_number(val.split(cs, 1)[0].strip()) if val else None
            if value is not None and (value in SENTINELS or check_value(param, value) is not None):
                value = None
            if len(f) > 7 and f[7].strip():
                flags.append(f"limits:{as_text(f[7].strip())}")
    if not event_code:
        return None
    phase = next((x.split(":", 1)[1].lower() for x in flags if x.startswith("phase:")), "")
    state = next((x.split(":", 1)[1].lower() for x in flags if x.startswith("state:")), "")
    active = phase not in _ENDED_PHASES and state not in _INACTIVE_STATES
    detail = as_text(event_code) + (f" {as_text(event_text)}" if event_text else "")
    return _status({"kind": "device_alarm", "active": active, "param": param, "detail": detail,
                    "flags": tuple(flags), "device_time": when, "priority": priority, "value": value})
