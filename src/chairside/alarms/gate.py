"""The pre-infusion start gate: the profile's ``gate`` rules on the values before START.

Owns: ``GateResult`` and ``evaluate_gate(profile, sbp, dbp, spo2, hr)`` — the one
evaluation of the gate (the console asks it through ``AlarmEngine.gate``). Every limit,
level and reason comes from the profile with its source tag.
May import: chairside.alarms.core/profile, stdlib. Must not import: textual, serial,
sqlite3, chairside.store, chairside.transport, chairside.service.
"""

from __future__ import annotations

from dataclasses import dataclass

from chairside.alarms.core import NAMES, OPS
from chairside.alarms.profile import PRIORITY_RANK, LimitsProfile

__all__ = ["GateResult", "evaluate_gate"]


@dataclass(frozen=True)
class GateResult:
    """The pre-infusion gate on the baseline values.

    ``level`` is the highest level reached (None when every value is inside),
    ``blocks_start`` whether START needs a prescriber's override with a reason;
    ``reasons`` every rule met (and the values not checked), ``blocking`` the rules that
    block START, each with its value and source tag.
    """

    level: str | None
    blocks_start: bool
    reasons: tuple[str, ...] = ()
    source_tags: tuple[str, ...] = ()
    blocking: tuple[str, ...] = ()

    def may_start(self, override_reason: str = "") -> bool:
        """True when the infusion may start: nothing blocks, or an override reason is given."""
        return not self.blocks_start or bool(override_reason.strip())


def evaluate_gate(profile: LimitsProfile, sbp: float | None, dbp: float | None, spo2: float | None,
                  hr: float | None) -> GateResult:
    """The pre-infusion gate on baseline values (profile ``gate`` rules)."""
    vals = {"sbp": sbp, "dbp": dbp, "spo2": spo2, "hr": hr}
    level = 0
    blocks = False
    reasons: list[str] = []
    tags: list[str] = []
    blocking: list[str] = []
    for g in profile.gate:
        v = vals[g.param]
        if v is None:
            continue
        if OPS[g.op](v, g.limit):
            rank = PRIORITY_RANK[g.level]
            level = max(level, rank)
            blocks = blocks or g.blocks_start
            reasons.append(g.reason)
            tags.append(g.source)
            if g.blocks_start:
                blocking.append(f"{g.reason} ({g.param.upper()} {v:g}) {g.source}")
    missing = [k for k, v in vals.items() if v is None]
    if missing:
        reasons.append(f"no value for {', '.join(missing)}: not checked")
        tags.append("")
    return GateResult(NAMES.get(level), blocks, tuple(reasons), tuple(tags), tuple(blocking))
