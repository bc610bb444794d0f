"""Alarm sound: the IEC 60601-1-8 bursts played through the machine's audio.

Owns: the burst patterns of ``data/alarm_sounds.toml`` (``load_patterns``; a pattern outside
the standard's ranges is refused with the file and key named), the pulse plan of a burst
(``pulse_plan``: onset and duration of every pulse), the WAV of a burst made with the
standard library (``render_wav``), the system players (``CommandPlayer``; ``probe_players``
finds pw-play, paplay, aplay with ``shutil.which``) and ``AlarmSound``: the start-up self-test
that picks the first player that works, and ``play(priority)`` (never blocks: the player
runs as its own process). The players are injectable, so tests run no sound.
Which burst sounds when (rising priority, repeat times) is the app's business, and the
terminal bell is its fallback; this module only says whether an audible path works.
Must not import: textual (only chairside.ui does), chairside.store, chairside.transport.
"""

from __future__ import annotations

import array
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

PRIORITIES = ("high", "medium", "low")
DATA_FILE = "alarm_sounds.toml"


class SoundDataError(ValueError):
    """The alarm sound file holds a value the standard does not allow (file and key named)."""


@dataclass(frozen=True)
class Tone:
    fundamental_hz: float
    harmonics: tuple[float, ...]
    ramp_fraction: float
    sample_rate_hz: int
    level: float


@dataclass(frozen=True)
class Pattern:
    """One priority's burst: ``pulses`` pulses of ``pulse_s`` (td), in ``groups``."""

    priority: str
    pulses: int
    pulse_s: float
    spacing_s: float
    groups: tuple[int, ...]
    half_pause_s: float | None = None


@dataclass(frozen=True)
class SoundData:
    tone: Tone
    patterns: dict[str, Pattern]
    player_commands: tuple[tuple[str, ...], ...]
    self_test_timeout_s: float


def _data_text() -> tuple[str, str]:
    ref = resources.files("chairside.data").joinpath(DATA_FILE)
    return ref.read_text(encoding="utf-8"), str(ref)


def load_patterns(text: str | None = None, where: str | None = None) -> SoundData:
    """Read and check the sound file (default: the packaged ``data/alarm_sounds.toml``)."""
    if text is None:
        text, where = _data_text()
    where = where or DATA_FILE
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SoundDataError(f"{where}: not TOML ({exc})") from None

    def num(section: str, key: str) -> float:
        try:
            v = doc[section][key]
        except KeyError:
            raise SoundDataError(f"{where}: [{section}] {key} is missing") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SoundDataError(f"{where}: [{section}] {key} = {v!r} is not a number")
        return float(v)

    def within(section: str, key: str, value: float, rng_key: str) -> None:
        lo, hi = doc.get("ranges", {}).get(rng_key, (None, None))
        if lo is not None and not (lo - 1e-9 <= value <= hi + 1e-9):
            raise SoundDataError(f"{where}: [{section}] {key} = {value:g} is outside the standard's "
                                 f"{lo:g}-{hi:g} ([ranges] {rng_key})")

    tone = Tone(fundamental_hz=num("tone", "fundamental_hz"),
                harmonics=tuple(float(h) for h in doc["tone"].get("harmonics", (1.0,))),
                ramp_fraction=num("tone", "ramp_fraction"),
                sample_rate_hz=int(num("tone", "sample_rate_hz")),
                level=num("tone", "level"))
    within("tone", "fundamental_hz", tone.fundamental_hz, "fundamental_hz")
    within("tone", "ramp_fraction", tone.ramp_fraction, "ramp_fraction")
    if not 0 < tone.level <= 1:
        raise SoundDataError(f"{where}: [tone] level = {tone.level:g} must be in (0, 1]")
    if tone.sample_rate_hz < 4 * tone.fundamental_hz * len(tone.harmonics) / 2:
        raise SoundDataError(f"{where}: [tone] sample_rate_hz = {tone.sample_rate_hz} is too low "
                             "for the harmonics")
    patterns: dict[str, Pattern] = {}
    for p in PRIORITIES:
        if p not in doc:
            raise SoundDataError(f"{where}: [{p}] is missing")
        pulses = int(num(p, "pulses"))
        groups = tuple(int(g) for g in doc[p].get("groups", (pulses,)))
        if pulses < 1 or sum(groups) != pulses:
            raise SoundDataError(f"{where}: [{p}] groups {list(groups)} do not add up to pulses = {pulses}")
        pat = Pattern(priority=p, pulses=pulses, pulse_s=num(p, "pulse_s"), spacing_s=num(p, "spacing_s"),
                      groups=groups, half_pause_s=num(p, "half_pause_s") if "half_pause_s" in doc[p] else None)
        within(p, "pulse_s", pat.pulse_s, f"{p}_pulse_s")
        within(p, "spacing_s", pat.spacing_s, f"{p}_spacing_s")
        if pat.half_pause_s is not None:
            within(p, "half_pause_s", pat.half_pause_s, f"{p}_half_pause_s")
        if len(groups) == 4 and pat.half_pause_s is None:
            raise SoundDataError(f"{where}: [{p}] a burst in two halves needs half_pause_s")
        patterns[p] = pat
    player = doc.get("player", {})
    commands = tuple(tuple(str(a) for a in c) for c in player.get("commands", ()))
    return SoundData(tone=tone, patterns=patterns, player_commands=commands,
                     self_test_timeout_s=float(player.get("self_test_timeout_s", 5.0)))


def gaps(pattern: Pattern) -> list[float]:
    """The spacing after each pulse but the last: x (or y) inside a group, 2x + td between
    the groups of a half-burst, the half pause between the two halves of a high burst."""
    out: list[float] = []
    half = len(pattern.groups) // 2 if len(pattern.groups) == 4 else None
    for gi, n in enumerate(pattern.groups):
        out += [pattern.spacing_s] * (n - 1)
        if gi < len(pattern.groups) - 1:
            if half is not None and gi == half - 1:
                out.append(float(pattern.half_pause_s or 0.0))
            else:
                out.append(2 * pattern.spacing_s + pattern.pulse_s)
    return out


def pulse_plan(pattern: Pattern, lead_s: float = 0.0) -> list[tuple[float, float]]:
    """(onset, duration) of every pulse, in seconds from the burst's start."""
    plan = []
    t = lead_s
    for i, gap in enumerate([*gaps(pattern), None]):
        plan.append((t, pattern.pulse_s))
        if gap is not None:
            t += pattern.pulse_s + gap
    return plan


def render_wav(pattern: Pattern, tone: Tone, path: str | os.PathLike[str] | None = None) -> bytes:
    """The burst as a 16-bit mono WAV (returned, and written to ``path`` when given).

    Each pulse is the fundamental with its harmonics, shaped by linear ramps of
    ``ramp_fraction`` x td centred on the half-amplitude onset and end."""
    rate = tone.sample_rate_hz
    ramp = tone.ramp_fraction * pattern.pulse_s
    lead = ramp  # room for the first ramp
    plan = pulse_plan(pattern, lead_s=lead)
    total = plan[-1][0] + pattern.pulse_s + ramp + 0.05
    n = int(round(total * rate))
    norm = tone.level / sum(abs(h) for h in tone.harmonics)
    samples = array.array("h", bytes(2 * n))
    two_pi_f = 2 * math.pi * tone.fundamental_hz
    for onset, td in plan:
        start = max(0, int(math.floor((onset - ramp / 2) * rate)))
        end = min(n, int(math.ceil((onset + td + ramp / 2) * rate)) + 1)
        for i in range(start, end):
            t = i / rate
            if t < onset + ramp / 2:
                env = (t - (onset - ramp / 2)) / ramp
            elif t > onset + td - ramp / 2:
                env = ((onset + td + ramp / 2) - t) / ramp
            else:
                env = 1.0
            if env <= 0:
                continue
            env = min(env, 1.0)
            x = 0.0
            for k, h in enumerate(tone.harmonics, start=1):
                x += h * math.sin(two_pi_f * k * t)
            samples[i] = int(round(32767 * norm * env * x))
    if samples.itemsize != 2:  # pragma: no cover - every CPython has 2-byte "h"
        raise RuntimeError("16-bit samples needed")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes() if sys.byteorder == "little" else _swapped(samples))
    data = buf.getvalue()
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return data


def _swapped(samples: array.array) -> bytes:  # pragma: no cover - big-endian machines
    s = array.array("h", samples)
    s.byteswap()
    return s.tobytes()


# ---------------------------------------------------------------------- players
class Player(Protocol):
    name: str

    def play(self, path: str, *, wait: bool = False, timeout: float | None = None) -> bool: ...


class CommandPlayer:
    """A system player run as ``argv`` with ``{path}`` replaced by the WAV's path."""

    def __init__(self, argv: Sequence[str], *, runner: Callable[..., Any] | None = None) -> None:
        self.argv = tuple(argv)
        self.name = Path(self.argv[0]).name
        self._popen = runner or subprocess.Popen

    def command(self, path: str) -> list[str]:
        return [a.replace("{path}", path) for a in self.argv]

    def play(self, path: str, *, wait: bool = False, timeout: float | None = None) -> bool:
        try:
            proc = self._popen(self.command(path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            return False
        if not wait:
            threading.Thread(target=proc.wait, daemon=True, name=f"audio-{self.name}").start()
            return True
        try:
            return proc.wait(timeout=timeout) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            return False

    def __repr__(self) -> str:
        return f"CommandPlayer({list(self.argv)!r})"


def probe_players(which: Callable[[str], str | None] = shutil.which,
                  commands: Sequence[Sequence[str]] | None = None) -> list[CommandPlayer]:
    """The players of the sound file that exist on this machine, in the file's order."""
    if commands is None:
        commands = load_patterns().player_commands
    found = []
    for argv in commands:
        exe = which(argv[0])
        if exe:
            found.append(CommandPlayer([exe, *argv[1:]]))
    return found


# ---------------------------------------------------------------------- the console's sound
class AlarmSound:
    """The console's audible alarm path.

    ``self_test()`` (at start-up, in a worker thread) plays the low burst through each player
    until one reports success; ``status`` is then that player's name, or ``"none"`` when no
    player works (the app falls back to the terminal bell and shows "AUDIO: NONE").
    ``play(priority)`` starts one burst and returns at once."""

    def __init__(self, players: Sequence[Player] | None = None, *, data: SoundData | None = None,
                 folder: str | os.PathLike[str] | None = None) -> None:
        self.data = data or load_patterns()
        self.players = list(players) if players is not None else None
        self.player: Player | None = None
        self.status = "untested"
        self._folder = Path(folder) if folder is not None else None
        self._own_folder = folder is None  # made here: removed by close()
        self._files: dict[str, str] = {}
        self._lock = threading.Lock()
        self.played: list[str] = []  # priorities started (tests, diagnostics)

    @property
    def working(self) -> bool:
        return self.player is not None

    def wav_path(self, priority: str) -> str:
        """The burst's WAV file (made once, owner-only)."""
        with self._lock:
            if priority not in self._files:
                if self._folder is None:
                    self._folder = Path(tempfile.mkdtemp(prefix="chairside-audio-"))
                path = self._folder / f"alarm-{priority}.wav"
                render_wav(self.data.patterns[priority], self.data.tone, path)
                self._files[priority] = str(path)
            return self._files[priority]

    def self_test(self) -> str:
        """Try the players in order with the low burst; remember the first that works."""
        players = self.players if self.players is not None else probe_players(
            commands=self.data.player_commands)
        self.player = None
        try:
            path = self.wav_path("low")
        except OSError:
            self.status = "none"
            return self.status
        for p in players:
            if p.play(path, wait=True, timeout=self.data.self_test_timeout_s):
                self.player = p
                break
        self.status = self.player.name if self.player is not None else "none"
        return self.status

    def close(self) -> None:
        """Remove the WAV files this object made (the console calls it on exit)."""
        with self._lock:
            if self._own_folder and self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
            self._files.clear()

    def play(self, priority: str) -> bool:
        """Start one burst of ``priority``; False when no audible path works."""
        player = self.player
        if player is None or priority not in self.data.patterns:
            return False
        self.played.append(priority)
        return player.play(self.wav_path(priority))
