"""HL7 encoder for the simulator: one IHE PCD-01 ORU^R01 message from a set of vitals.

Owns: ``encode_oru_r01``. The codes it writes are the ones ``observations`` reads back.
Must not import: anything outside stdlib (sans-I/O, like every driver).
"""

from __future__ import annotations

from datetime import UTC, datetime

# key -> (MDC code, MDC reference id, containment OBX-4, UCUM unit)
_ENC: dict[str, tuple[str, str, str, str]] = {
    "nibp_sys": ("150021", "MDC_PRESS_BLD_NONINV_SYS", "1.1.1.1", "mm[Hg]"),
    "nibp_dia": ("150022", "MDC_PRESS_BLD_NONINV_DIA", "1.1.1.2", "mm[Hg]"),
    "nibp_map": ("150023", "MDC_PRESS_BLD_NONINV_MEAN", "1.1.1.3", "mm[Hg]"),
    "pr_nibp": ("149546", "MDC_PULS_RATE_NON_INV", "1.1.1.4", "{beat}/min"),
    "hr": ("147842", "MDC_ECG_HEART_RATE", "1.2.1.1", "{beat}/min"),
    "spo2": ("150456", "MDC_PULS_OXIM_SAT_O2", "1.3.1.1", "%"),
    "pr": ("149530", "MDC_PULS_OXIM_PULS_RATE", "1.3.1.2", "{beat}/min"),
}
_ENC_ORDER = ("nibp_sys", "nibp_dia", "nibp_map", "pr_nibp", "hr", "spo2", "pr")


def _ts_text(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.strftime("%Y%m%d%H%M%S%z")


def _num_text(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def encode_oru_r01(*, when: datetime, values: dict[str, float | None], nibp_time: datetime | None = None,
                   control_id: str, mllp: bool = True, sending_app: str = "CHAIRSIDE_SIM") -> bytes:
    """One IHE PCD-01 ORU^R01 (HL7 v2.6) with the given vitals; MLLP-framed unless ``mllp=False``.

    ``values`` keys among ``hr, pr, spo2, nibp_sys, nibp_dia, nibp_map, pr_nibp``; a None
    value is sent as an empty OBX-5 with OBX-11 ``X``. NIBP observations carry OBX-14 =
    ``nibp_time`` (else ``when``); the others have no OBX-14 (OBR-7 = ``when`` applies).
    Segments end with CR; MSH-15 = AL (the receiver ACKs).
    """
    unknown = set(values) - set(_ENC)
    if unknown:
        raise ValueError(f"encode_oru_r01: unknown value keys {sorted(unknown)}; use {list(_ENC_ORDER)}")
    ts = _ts_text(when)
    segs = [
        f"MSH|^~\\&|{sending_app}|CHAIRSIDE|||{ts}||ORU^R01^ORU_R01|{control_id}|P|2.6|||AL|NE||UNICODE UTF-8|||"
        "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        "PID|||SIM0001^^^CHAIRSIDE^MR||Simulated^Patient^^^^^L",
        "PV1||O|CHAIR^1",
        f"OBR|1|{control_id}^{sending_app}|{control_id}^{sending_app}|182777000^monitoring of patient^SCT|||{ts}",
        "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
    ]
    n = 1
    nibp_ts = _ts_text(nibp_time) if nibp_time is not None else ts
    for key in _ENC_ORDER:
        if key not in values:
            continue
        code, ref, containment, ucum = _ENC[key]
        v = values[key]
        n += 1
        obs_ts = nibp_ts if key.startswith("nibp") or key == "pr_nibp" else ""
        value_text = "" if v is None else _num_text(float(v))
        status = "X" if v is None else "R"
        segs.append(f"OBX|{n}|NM|{code}^{ref}^MDC|{containment}|{value_text}|{ucum}^{ucum}^UCUM|||||{status}|||{obs_ts}")
    msg = ("\r".join(segs) + "\r").encode("utf-8")
    return b"\x0b" + msg + b"\x1c\r" if mllp else msg
