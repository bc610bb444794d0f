"""What staff do to alarms, and what happens while nobody does: acknowledgement, audio
pause (limited), audio off and alarm off (indefinite, with reminders; refused for SpO2 and
BP while infusing), resuming them, and time escalation of unacknowledged alarms
(re-announced after ``escalation_reannounce_s``, high after ``escalation_high_s``).

Owns: ``Silencing``. Times come from the profile's settings; protected parameters and the
classes that escalate by time from its ``behaviour``.
May import: chairside.domain, chairside.alarms.core/ladders/combined/technical/profile,
stdlib. Must not import: textual, serial, sqlite3, chairside.store, chairside.transport,
chairside.service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from chairside.alarms.combined import Combined
from chairside.alarms.core import EPS, HIGH, MEDIUM, NAMES, AlarmOffRefused, Core
from chairside.alarms.ladders import Ladders
from chairside.alarms.technical import Technical
from chairside.domain.events import AlarmAcknowledged, AlarmEscalated, AlarmSilenced

__all__ = ["Silencing"]


class Silencing:
    """Acknowledgement, audio pause/off, alarm off, reminders and time escalation."""

    def __init__(self, core: Core, ladders: Ladders, combined: Combined, technical: Technical,
                 recompile: Callable[[], None]) -> None:
        self.core = core
        self.ladders = ladders
        self.combined = combined
        self.technical = technical
        self.recompile = recompile
        s = core.profile.setting
        self.audio_pause_s = s("audio_pause_s")
        self.reminder_s = s("reminder_interval_s")
        self.reannounce_s = s("escalation_reannounce_s")
        self.esc_high_s = s("escalation_high_s")
        b = core.profile.behaviour
        self.esc_classes = frozenset(b.escalation_classes)
        self.protected = frozenset(b.protected_params_while_infusing)
        self.audio_off_since: list[float] | None = None  # [last reminder mono]
        self.audio_off_by = ""
        self.off: dict[str, tuple[frozenset[str], str, list[float]]] = {}

    @property
    def audio_is_off(self) -> bool:
        return self.audio_off_since is not None

    def _set_off_rules(self) -> None:
        self.core.off_rules = (frozenset().union(*(r for r, _b, _m in self.off.values()))
                               if self.off else frozenset())

    # ------------------------------------------------------------------ acknowledgement
    def acknowledge(self, alarm_id: str | None, by: str, now: datetime, rule: str = "") -> list:
        """Acknowledge one alarm (by id) or all active ones (None). An id no longer active
        falls back to the same ``rule``'s unacknowledged alarm, if one is given (a replay
        recomputes alarms under new ids). A latched alarm whose condition has gone is cleared
        after its acknowledgement; the events keep its record."""
        if not by or not by.strip():
            raise ValueError("acknowledge needs the initials of who acknowledged")
        core = self.core
        out: list = []
        mono = core.mono(now)
        active = core.sorted_active()
        if alarm_id is None:
            targets = active
        else:
            targets = [a for a in active if a.id == alarm_id]
            if not targets and rule:
                targets = [a for a in active if a.rule == rule and not a.acknowledged][:1]
        for a in targets:
            if a.acknowledged:
                continue
            a.acknowledged = True
            a.acknowledged_by = by
            a.audio_paused_until = None
            out.append(AlarmAcknowledged(t=now, mono=mono, alarm_id=a.id, rule=a.rule, by=by, author=by))
            if not a.condition:
                a.latched = False
                core.clear(a, f"acknowledged by {by} after the condition had cleared", now, mono, out)
                self.after_clear(a, now, mono, out)
        return out

    def after_clear(self, a, now: datetime, mono: float, out: list) -> None:
        """A latched group alarm acknowledged away while lower conditions of its group still
        hold: they raise a new alarm at their own priority."""
        owner = a.owner
        if hasattr(owner, "members") and owner.alarm is None and any(m.held for m in owner.members):
            self.ladders.regroup(owner, now, mono, out)

    # ------------------------------------------------------------------ audio
    def pause_audio(self, by: str, now: datetime, seconds: float | None = None) -> list:
        """Pause the audio of the active unacknowledged alarms for ``seconds``
        (default: the profile's audio_pause_s). New or escalated alarms sound again."""
        s = self.audio_pause_s if seconds is None else float(seconds)
        if not (s > 0) or math.isinf(s):
            raise ValueError("audio pause needs a positive, limited number of seconds")
        core = self.core
        out: list = []
        mono = core.mono(now)
        until = now + timedelta(seconds=s)
        targets = [a for a in core.sorted_active() if not a.acknowledged]
        for a in targets:
            a.audio_paused_until = until
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id=a.id, rule=a.rule, mode="audio_paused",
                                     duration_s=s, by=by, author=by))
        if not targets:
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id="*", rule="", mode="audio_paused",
                                     duration_s=s, by=by, author=by))
        return out

    def audio_off(self, by: str, now: datetime) -> list:
        """Audio off indefinitely (a reminder every reminder_interval_s); refused while infusing."""
        if self.core.infusing:
            raise AlarmOffRefused("audio off is refused while infusing: SpO2 and BP alarms must sound")
        out: list = []
        mono = self.core.mono(now)
        if self.audio_off_since is None:
            self.audio_off_since = [mono]
            self.audio_off_by = by
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="audio_off", by=by, author=by))
        return out

    def audio_priority(self) -> str | None:
        """The priority that should sound now: the highest unacknowledged, not audio-paused alarm."""
        if self.audio_off_since is not None:
            return None
        best = 0
        for a in self.core.active.values():
            if not a.acknowledged and a.audio_paused_until is None and a.rank > best:
                best = a.rank
        return NAMES.get(best)

    # ------------------------------------------------------------------ alarm off
    def _rule_params(self, name: str) -> set[str]:
        for ld in self.ladders.all:
            if ld.name == name:
                return {ld.key}
        for cs in self.combined.all:
            if cs.name == name:
                return {t.param for t in cs.rule.when}
        ts = self.technical.states.get(name)
        if ts is not None:
            return {"*"} if ts.param is None else {ts.param}
        return set()

    def _resolve(self, target: str) -> frozenset[str]:
        names = self.ladders.names() + self.combined.names() + self.technical.names()
        if target in names:
            return frozenset({target})
        found = {ld.name for ld in self.ladders.all if ld.key == target}
        found |= {cs.name for cs in self.combined.all if cs.rule.primary == target}
        found |= {n for n, ts in self.technical.states.items() if ts.param == target}
        if not found:
            raise ValueError(f"unknown rule or parameter {target!r}; rules: {', '.join(names)}")
        return frozenset(found)

    def _is_protected(self, rules: Iterable[str]) -> bool:
        for r in rules:
            ps = self._rule_params(r)
            if "*" in ps or ps & self.protected:
                return True
        return False

    def alarm_off(self, rule_or_param: str, by: str, now: datetime) -> list:
        """Turn a rule (or every rule of a parameter) off until it is resumed. Refused for
        SpO2 and BP while infusing. Active alarms of those rules are cleared (their events stay)."""
        core = self.core
        rules = self._resolve(rule_or_param)
        if core.infusing and self._is_protected(rules):
            raise AlarmOffRefused(
                f"alarm off for {rule_or_param!r} is refused while infusing (SpO2 and BP alarms stay on)"
            )
        out: list = []
        mono = core.mono(now)
        self.off[rule_or_param] = (rules, by, [mono])
        core.off_rules = core.off_rules | rules
        out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{rule_or_param}", rule=rule_or_param,
                                 mode="alarm_off", by=by, author=by))
        for a in core.sorted_active():
            if a.rule in rules:
                core.clear(a, f"alarm off by {by}", now, mono, out)
        self.technical.turned_off(rules)
        self.recompile()
        return out

    def resume(self, target: str, by: str, now: datetime) -> list:
        """Staff end an audio off (``target`` "audio") or an alarm off (``"off:<rule>"``
        or the rule or parameter it was turned off for)."""
        out: list = []
        mono = self.core.mono(now)
        if target == "audio":
            if self.audio_off_since is not None:
                self.audio_off_since = None
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="resumed",
                                         by=by, author=by))
            return out
        name = target[len("off:"):] if target.startswith("off:") else target
        if name in self.off:
            del self.off[name]
            self._set_off_rules()
            self.recompile()
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{name}", rule=name, mode="resumed",
                                     by=by, author=by))
        return out

    def infusion_started(self, now: datetime, mono: float, out: list) -> None:
        """Starting (or resuming) the drug cancels alarm off of SpO2/BP and audio off."""
        for target in list(self.off):
            rules, _by, _rem = self.off[target]
            if self._is_protected(rules):
                del self.off[target]
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{target}", rule=target,
                                         mode="resumed", by=""))
        self._set_off_rules()
        self.recompile()
        if self.audio_off_since is not None:
            self.audio_off_since = None
            out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="resumed", by=""))

    # ------------------------------------------------------------------ time
    def tick(self, now: datetime, mono: float, out: list) -> None:
        if self.core.active:
            self._tick_escalation(now, mono, out)
            self._tick_audio(now, mono, out)
        elif self.audio_off_since is not None or self.off:
            self._tick_audio(now, mono, out)

    def _tick_escalation(self, now: datetime, mono: float, out: list) -> None:
        core = self.core
        for a in list(core.active.values()):
            if a.rank != MEDIUM or a.acknowledged or a.alarm_class not in self.esc_classes:
                continue
            age = mono - a.level_mono
            if age >= self.esc_high_s - EPS:
                core.escalate(a, HIGH, f"unacknowledged {self.esc_high_s:g} s"
                              + (f"; {a.now_text}" if a.now_text else ""), now, mono, out)
            elif age >= self.reannounce_s - EPS and not a.reannounced:
                a.reannounced = True
                out.append(AlarmEscalated(
                    t=now, mono=mono, alarm_id=a.id, rule=a.rule, from_priority="medium",
                    to_priority="medium",
                    reason=f"unacknowledged {self.reannounce_s:g} s" + (f"; {a.now_text}" if a.now_text else ""),
                    reannounce=True, value=a.last_value,
                ))

    def _tick_audio(self, now: datetime, mono: float, out: list) -> None:
        for a in self.core.active.values():
            if a.audio_paused_until is not None and now >= a.audio_paused_until:
                a.audio_paused_until = None
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id=a.id, rule=a.rule, mode="resumed", by=""))
        if self.audio_off_since is not None:
            if mono - self.audio_off_since[0] >= self.reminder_s - EPS:
                self.audio_off_since[0] = mono
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id="audio", rule="", mode="reminder",
                                         by=self.audio_off_by))
        for target, (_rules, by, rem) in self.off.items():
            if mono - rem[0] >= self.reminder_s - EPS:
                rem[0] = mono
                out.append(AlarmSilenced(t=now, mono=mono, alarm_id=f"off:{target}", rule=target,
                                         mode="reminder", by=by))
