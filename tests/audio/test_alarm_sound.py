"""The alarm sound (issue 15 item 9): the IEC 60601-1-8 bursts measured in the WAV, the
player chosen by probing, the start-up self-test, and what the console shows.

Expected numbers come from data/alarm_sounds.toml read here with tomllib, laid out by the
standard's rule (high: 3 + 2 pulses spaced x, 2x + td between the groups, the half pause
between the two halves; medium 3 pulses spaced y; low 1 pulse), never from the module's own
plan. The WAV is measured from its samples: the envelope, its half-amplitude crossings,
and the pulse's spectrum (Goertzel at the fundamental and its harmonics)."""

from __future__ import annotations

import math
import tomllib
import wave
from pathlib import Path

import pytest

from chairside import audio
from chairside.audio import AlarmSound, CommandPlayer, SoundDataError, load_patterns, probe_players, render_wav

DATA = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "alarm_sounds.toml"
DOC = tomllib.loads(DATA.read_text(encoding="utf-8"))


def expected_gaps(priority: str) -> list[float]:
    p = DOC[priority]
    x, td = p["spacing_s"], p["pulse_s"]
    if priority == "high":  # 3 + 2, half pause, 3 + 2
        return [x, x, 2 * x + td, x, p["half_pause_s"], x, x, 2 * x + td, x]
    return [x] * (p["pulses"] - 1)


def read_wav(path: Path) -> tuple[list[int], int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    import array

    a = array.array("h")
    a.frombytes(raw)
    return list(a), rate


def measure_pulses(samples: list[int], rate: int, f0: float) -> list[tuple[float, float]]:
    """(onset, duration) of each pulse: the envelope (running max of |x| over one period of
    the fundamental), cut at half its peak."""
    win = max(1, int(round(rate / f0)))
    absx = [abs(v) for v in samples]
    n = len(absx)
    # running max over a centred window (deque-free, blocks of win)
    env = [0] * n
    half = win // 2
    for i in range(n):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        env[i] = max(absx[lo:hi])
    peak = max(env)
    on = [e >= peak / 2 for e in env]
    pulses = []
    i = 0
    while i < n:
        if on[i]:
            j = i
            while j < n and on[j]:
                j += 1
            pulses.append((i / rate, (j - i) / rate))
            i = j
        else:
            i += 1
    return pulses


def goertzel(samples: list[int], rate: int, freq: float) -> float:
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
    return math.sqrt(max(0.0, s1 * s1 + s2 * s2 - k * s1 * s2))


@pytest.mark.parametrize("priority,count", [("high", 10), ("medium", 3), ("low", 1)])
def test_the_burst_in_the_wav_has_the_standards_pulses(tmp_path, priority, count):
    data = load_patterns()
    path = tmp_path / f"{priority}.wav"
    render_wav(data.patterns[priority], data.tone, path)
    samples, rate = read_wav(path)
    assert rate == DOC["tone"]["sample_rate_hz"]
    pulses = measure_pulses(samples, rate, DOC["tone"]["fundamental_hz"])
    assert len(pulses) == count == DOC[priority]["pulses"]
    tol = 1.5 / DOC["tone"]["fundamental_hz"] + 2 / rate  # the envelope's window
    td = DOC[priority]["pulse_s"]
    lo, hi = DOC["ranges"][f"{priority}_pulse_s"]
    for _onset, dur in pulses:
        assert dur == pytest.approx(td, abs=tol)
        assert lo - tol <= dur <= hi + tol  # inside the standard's range
    measured_gaps = [b[0] - (a[0] + a[1]) for a, b in zip(pulses, pulses[1:])]
    assert measured_gaps == pytest.approx(expected_gaps(priority), abs=tol)
    if priority == "high":
        x = DOC["high"]["spacing_s"]
        slo, shi = DOC["ranges"]["high_spacing_s"]
        assert slo <= x <= shi


def test_the_pulse_is_a_tone_with_four_harmonics_within_15_db(tmp_path):
    data = load_patterns()
    path = tmp_path / "medium.wav"
    render_wav(data.patterns["medium"], data.tone, path)
    samples, rate = read_wav(path)
    onset, dur = measure_pulses(samples, rate, DOC["tone"]["fundamental_hz"])[0]
    mid = samples[int((onset + 0.2 * dur) * rate):int((onset + 0.8 * dur) * rate)]
    f0 = DOC["tone"]["fundamental_hz"]
    lo, hi = DOC["ranges"]["fundamental_hz"]
    assert lo <= f0 <= hi
    mags = [goertzel(mid, rate, f0 * k) for k in range(1, 6)]
    off = goertzel(mid, rate, f0 * 1.5)  # between harmonics: nothing there
    assert mags[0] > 20 * off
    in_band = [m for k, m in enumerate(mags, start=1) if 300 <= f0 * k <= 4000]
    assert len(in_band) >= 4
    for m in in_band:
        assert 20 * math.log10(m / mags[0]) >= -15


def test_a_pattern_outside_the_standard_is_refused_with_file_and_key():
    text = DATA.read_text(encoding="utf-8").replace("pulse_s = 0.150", "pulse_s = 0.500", 1)
    with pytest.raises(SoundDataError) as e:
        load_patterns(text, "limits.toml")
    assert "limits.toml" in str(e.value) and "[high] pulse_s" in str(e.value)


def test_players_are_found_by_probing_in_the_files_order():
    exists = {"aplay": "/usr/bin/aplay", "paplay": "/usr/bin/paplay"}
    found = probe_players(which=exists.get)
    names = [p.name for p in found]
    order = [c[0] for c in DOC["player"]["commands"]]
    assert names == [n for n in order if n in exists]
    assert probe_players(which=lambda _n: None) == []


class FakeProc:
    def __init__(self, rc):
        self.rc = rc

    def wait(self, timeout=None):
        return self.rc


def test_the_self_test_takes_the_first_player_that_works(tmp_path):
    calls = []

    def runner(rc):
        def popen(argv, **_kw):
            calls.append(argv)
            return FakeProc(rc)
        return popen

    broken = CommandPlayer(["pw-play", "{path}"], runner=runner(1))  # no PipeWire server
    good = CommandPlayer(["aplay", "-q", "{path}"], runner=runner(0))
    sound = AlarmSound([broken, good], folder=tmp_path)
    assert sound.self_test() == "aplay" and sound.working
    assert calls[0][0] == "pw-play" and calls[1][:2] == ["aplay", "-q"]
    assert Path(calls[1][2]).name == "alarm-low.wav"  # the self-test plays the low burst
    assert sound.play("high")
    assert Path(calls[-1][-1]).name == "alarm-high.wav"
    assert (Path(calls[-1][-1]).stat().st_mode & 0o777) == 0o600


def test_no_working_player_means_none(tmp_path):
    dead = CommandPlayer(["paplay", "{path}"], runner=lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
    sound = AlarmSound([dead], folder=tmp_path)
    assert sound.self_test() == "none" and not sound.working
    assert sound.play("high") is False


def test_the_audio_module_does_not_import_textual():
    src = Path(audio.__file__).read_text(encoding="utf-8")
    assert "textual" not in [line.split()[1].split(".")[0] for line in src.splitlines()
                             if line.startswith(("import ", "from "))]


def test_close_removes_the_wav_files_it_made():
    sound = AlarmSound([CommandPlayer(["aplay", "{path}"], runner=lambda *a, **k: FakeProc(0))])
    assert sound.self_test() == "aplay"
    folder = Path(sound.wav_path("low")).parent
    assert folder.is_dir()
    sound.close()
    assert not folder.exists()
