"""Readings and device-status records: what a driver produces from a monitor's bytes.

Owns: ``Reading`` (one value of one parameter), ``DeviceStatus`` (a condition the device
reports: probe off, NIBP failed, a device alarm...), the canonical parameter names.
Must not import: anything outside stdlib and pydantic.

A missing value is ``value=None`` with ``valid=False`` and a flag that says why
("no_data", "sensor_off", "marker:-32767"...). It is never a zero.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Param(StrEnum):
    """Canonical parameter names (the ``param`` key of ``chairside decode``)."""

    HR = "hr"  # ECG heart rate
    PR = "pr"  # pulse rate (from SpO2 or NIBP; see Reading.source)
    SPO2 = "spo2"
    NIBP_SYS = "nibp_sys"
    NIBP_DIA = "nibp_dia"
    NIBP_MAP = "nibp_map"
    PI = "pi"  # perfusion index
    RR = "rr"  # respiratory rate


NIBP_PARAMS = frozenset({Param.NIBP_SYS, Param.NIBP_DIA, Param.NIBP_MAP})


class Reading(BaseModel):
    """One value of one parameter, as the device showed it.

    ``param`` is one of :class:`Param` or another lowercase name for extra parameters.
    ``source`` names the channel the value came from: ``"ecg"``, ``"spo2"``, ``"nibp"``
    (PR from SpO2 vs from the cuff), ``"manual"`` for a value typed in by staff.
    ``device_time`` is the device's own timestamp (None when the protocol gives none);
    ``receive_time`` is set by the transport/service from the injected clock (drivers
    have no clock and leave it None).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    param: str
    value: float | None
    unit: str
    valid: bool = True
    flags: tuple[str, ...] = ()
    device_time: datetime | None = None
    receive_time: datetime | None = None
    source: str = "device"
    origin: Literal["device", "manual"] = "device"

    @property
    def time(self) -> datetime | None:
        """The best time for this value: the device's, else when it was received."""
        return self.device_time or self.receive_time


class DeviceStatus(BaseModel):
    """A condition reported by the device or the data path (not a physiological value).

    ``kind`` examples: ``probe_off``, ``no_sensor``, ``low_perfusion``, ``pulse_search``,
    ``interference``, ``nibp_failed``, ``module_absent``, ``device_alarm``, ``link_up``,
    ``link_lost``, ``no_data``, ``high_error_rate``.
    ``active`` is True when the condition starts/persists and False when it ends.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    active: bool = True
    param: str | None = None
    detail: str = ""
    flags: tuple[str, ...] = ()
    device_time: datetime | None = None
    receive_time: datetime | None = None
    # For device alarms (HL7 ORU^R40, Masimo ALARM bits): the device's own priority/text.
    priority: str | None = None
    value: float | None = None


DriverOutput = Reading | DeviceStatus
