"""Fixed-dose devices (esketamine nasal spray): the dose in devices of ``device_mg``, the wait
between devices, the maximum, and the BP checks around them.

Owns: ``check_device`` (may the next device be given now? refused above ``hard_max``
mg in total, before ``device_wait_min`` since the last device, or with a planned dose
outside the template's allowed doses), ``check_plan``, ``bp_findings`` (a BP before the
first device, at about ``rems.bp_at_min`` after it, and shortly before discharge) and
``DeviceRefused``.
Must not import: anything outside stdlib; of chairside only ``chairside.domain``.

Every number comes from the template (``dosing.device_mg``, ``device_wait_min``,
``hard_max``, ``allowed_doses``; ``rems.bp_at_min``, ``bp_at_min_window``,
``bp_before_completion_min``), with its source tag in the messages. There is no mg/kg and
no mL/h here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class DeviceRefused(ValueError):
    """The device may not be given (the message says why)."""


def _tag(section: Any, field: str) -> str:
    t = section.source(field)
    return f" {t}" if t else ""


def is_device_template(template: Any) -> bool:
    d = template.dosing
    return d.basis == "mg_fixed" and d.device_mg is not None


def check_plan(template: Any, planned_mg: float | None, *, reason: str = "") -> float:
    """The planned dose in mg (default the template's ``dose``): a whole number of devices,
    not above ``hard_max`` (refused); outside ``allowed_doses`` needs a reason."""
    d = template.dosing
    plan = float(d.dose if planned_mg is None else planned_mg)
    if plan > d.hard_max:
        raise DeviceRefused(f"planned {plan:g} mg is above the maximum {d.hard_max:g} mg{_tag(d, 'hard_max')}; refused")
    n = plan / d.device_mg
    if plan <= 0 or abs(n - round(n)) > 1e-9:
        raise DeviceRefused(f"planned {plan:g} mg is not a whole number of {d.device_mg:g} mg devices")
    if d.allowed_doses and plan not in d.allowed_doses and not reason.strip():
        raise DeviceRefused(f"planned {plan:g} mg is not one of the labelled doses "
                            f"{'/'.join(f'{x:g}' for x in d.allowed_doses)} mg{_tag(d, 'allowed_doses')}: "
                            "record a reason")
    return plan


@dataclass(frozen=True)
class DeviceCheck:
    n: int  # this device's number (1 = first)
    device_mg: float
    total_mg: float  # after this device
    planned_mg: float
    completes_plan: bool


def check_device(template: Any, devices: Any, now_mono: float, *, planned_mg: float | None = None,
                 reason: str = "") -> DeviceCheck:
    """May the next device be given at ``now_mono``? ``devices`` is ``SessionState.devices``."""
    d = template.dosing
    if not is_device_template(template):
        raise DeviceRefused(f"the {template.name} template is not dosed by devices")
    plan = devices.planned_mg if devices.count and devices.planned_mg is not None and planned_mg is None \
        else check_plan(template, planned_mg, reason=reason)
    total = devices.total_mg + d.device_mg
    if total > d.hard_max + 1e-9:
        raise DeviceRefused(f"device {devices.count + 1} would make {total:g} mg, above the maximum "
                            f"{d.hard_max:g} mg{_tag(d, 'hard_max')}; refused")
    last = devices.last
    if last is not None and d.device_wait_min is not None:
        waited = (now_mono - last.mono) / 60.0
        if waited < d.device_wait_min - 1e-9:
            raise DeviceRefused(f"only {waited:.1f} min since device {devices.count}: wait "
                                f"{d.device_wait_min:g} min between devices{_tag(d, 'device_wait_min')}")
    if total > plan + 1e-9:
        if not reason.strip():
            raise DeviceRefused(f"device {devices.count + 1} would make {total:g} mg, above the planned "
                                f"{plan:g} mg: record a reason")
        plan = total
    return DeviceCheck(n=devices.count + 1, device_mg=d.device_mg, total_mg=total, planned_mg=plan,
                       completes_plan=total >= plan - 1e-9)


def bp_findings(template: Any, devices: Any, nibp_log: Sequence[Any], now: datetime) -> tuple[str, ...]:
    """The BPs the template asks for around the devices, as unmet sentences: before the first
    device, at about ``bp_at_min`` after it, and within ``bp_before_completion_min`` of ``now``
    (the discharge)."""
    rems = template.rems
    first = devices.first
    if rems is None or first is None:
        return ()
    out: list[str] = []
    bps = [e for e in nibp_log if e[2] is not None and e[3] is not None]
    if not any(e[0] <= first.t for e in bps):
        out.append("no BP was measured before the first device")
    at, win = rems.bp_at_min, rems.bp_at_min_window
    if win is not None:
        lo, hi = (at - win) * 60.0, (at + win) * 60.0
        if not any(lo <= (e[0] - first.t).total_seconds() <= hi for e in bps):
            out.append(f"no BP at about {at:g} min after the first device ({at - win:g}-{at + win:g} min"
                       f"{_tag(rems, 'bp_at_min_window')})")
    recent = rems.bp_before_completion_min
    if recent is not None and not any(0 <= (now - e[0]).total_seconds() <= recent * 60.0 for e in bps):
        out.append(f"no BP in the last {recent:g} min before discharge{_tag(rems, 'bp_before_completion_min')}")
    return tuple(out)
