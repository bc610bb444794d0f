"""Test support for the alarm engine: a harness that feeds readings at given seconds and
keeps every event, plus helpers that read the limits profiles' raw TOML (the tests take
their expected numbers from the data files, never from the engine)."""

from __future__ import annotations

import copy
import functools
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chairside.alarms import AlarmEngine, load_profile
from chairside.domain.events import ObservationRecorded
from chairside.domain.readings import DeviceStatus, Reading

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS_DIR = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "limits"
PROFILES = sorted(p.stem for p in LIMITS_DIR.glob("*.toml"))
RANK = {"low": 1, "medium": 2, "high": 3}
UNITS = {"spo2": "%", "hr": "bpm", "pr": "bpm", "rr": "/min", "nibp_sys": "mmHg", "nibp_dia": "mmHg", "nibp_map": "mmHg"}
NIBP = ("nibp_sys", "nibp_dia", "nibp_map")


@functools.lru_cache(maxsize=None)
def _raw(name: str) -> dict:
    return tomllib.loads((LIMITS_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def raw(name: str) -> dict:
    """The profile's TOML as plain data (independent of the engine's loader)."""
    return copy.deepcopy(_raw(name))


@functools.lru_cache(maxsize=None)
def cached_profile(name: str):
    return load_profile(name)  # frozen models: safe to share


def num(x) -> float:
    return float(x["value"]) if isinstance(x, dict) else float(x)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


class Harness:
    def __init__(self, profile: str = "standard", *, phase: str = "infusion", infusing: bool | None = None,
                 baseline: tuple | None = None, template=None):
        self.profile = cached_profile(profile)
        self.e = AlarmEngine(self.profile, t0=T0, template=template)
        self.events: list = []
        self.events += self.e.set_phase(phase, T0)
        if infusing is None:
            infusing = phase == "infusion"
        self.events += self.e.set_infusing(infusing, T0)
        if baseline is not None:
            self.e.set_baseline(*baseline)
        self._nibp_n = 0

    def reading(self, s: float, param: str, value, *, valid: bool = True, flags: tuple = (), tick=True):
        r = Reading(param=param, value=value, unit=UNITS.get(param, ""), valid=valid, flags=flags,
                    device_time=at(s))
        got = self.e.on_reading(r, at(s))
        if tick:
            got += self.e.tick(at(s))
        self.events += got
        return got

    def nibp(self, s: float, sys=None, dia=None, mean=None):
        got = []
        for p, v in zip(NIBP, (sys, dia, mean)):
            if v is not None:
                got += self.e.on_reading(Reading(param=p, value=v, unit="mmHg", device_time=at(s)), at(s))
        got += self.e.tick(at(s))
        self.events += got
        return got

    def status(self, s: float, kind: str, active: bool = True, param: str | None = "spo2"):
        got = self.e.on_device_status(DeviceStatus(kind=kind, active=active, param=param), at(s))
        self.events += got
        return got

    def obs(self, s: float, scale: str, score=None, items=None):
        o = ObservationRecorded(t=at(s), scale=scale, score=score, items=items or {}, author="RN")
        got = self.e.on_observation(o, at(s))
        self.events += got
        return got

    def tick(self, s: float):
        got = self.e.tick(at(s))
        self.events += got
        return got

    def alarm(self, rule: str):
        """The active alarm of ``rule``: its own, or its group's alarm while its condition
        holds there (one alarm per parameter group)."""
        for a in self.e.active():
            if a.rule == rule:
                return a
        for a in self.e.active():
            if rule in a.held_rules:
                return a
        return None

    def evidence(self, rule: str) -> list:
        """Raise and escalation events that name ``rule`` (a group alarm names its leading rule)."""
        return [ev for ev in self.events if ev.kind in ("alarm_raised", "alarm_escalated") and ev.rule == rule]

    def priority(self, rule: str) -> str | None:
        a = self.alarm(rule)
        return None if a is None else a.priority

    def kinds(self, rule: str | None = None) -> list[str]:
        return [ev.kind for ev in self.events if rule is None or ev.rule == rule]

    def raised(self, rule: str | None = None, klass: str | None = None) -> list:
        return [ev for ev in self.events if ev.kind == "alarm_raised" and (rule is None or ev.rule == rule)
                and (klass is None or ev.alarm_class == klass)]
