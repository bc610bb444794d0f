"""Issue 15 ("respiratory rate where the monitor sends it ... HL7 and S/5 carry it"), end to
end with the real GE/Datex S/5 captures of ../shared/vectors/ge-s5:

* live: the capture's bytes written into a pseudo-terminal -> pyserial -> the ge-s5 driver ->
  ``MonitorService``: the RR tile appears with the capture's respiration rate (CO2 group
  rr at the layout's offset, read here independently of the driver) and its limits from
  the limits data;
* limits: the same capture with the CO2 rr of its later records changed to a value below the
  high tier of ``rr_low`` (from the limits data) -> ``chairside replay --driver ge-s5 --phase
  infusion --session OUT`` (plain bytes -> driver -> service -> engine -> store): the session
  file holds an rr_low alarm at HIGH, no earlier than the tier's delay after the first low
  reading.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.name != "posix", reason="needs a pty")]

ROOT = Path(__file__).resolve().parents[2]
VEC = ROOT.parent / "shared" / "vectors" / "ge-s5"
LIMITS = tomllib.loads((ROOT / "src" / "chairside" / "data" / "limits" / "standard.toml").read_text())
CO2_RR = 4 + 142  # after the displayed-values subrecord's u32 time: CO2 group at +132, rr at +10 in it


def _num(x):
    return x["value"] if isinstance(x, dict) else x


def _tier(rule: str, priority: str) -> dict:
    (ld,) = [ld for ld in LIMITS["ladder"] if ld["name"] == rule]
    return next(t for t in ld["tiers"] if t["priority"] == priority and "infusion" in t["phases"])


def _frames(data: bytes) -> list[bytes]:
    """The capture's records (unstuffed, checksum dropped), in order: an independent reader."""
    out = []
    for part in data.split(b"\x7e")[1:-1]:
        if not part:
            continue
        u = bytearray()
        i = 0
        while i < len(part):
            if part[i] == 0x7D and i + 1 < len(part):
                u.append(part[i + 1] ^ 0x20)
                i += 2
            else:
                u.append(part[i])
                i += 1
        if len(u) > 41 and sum(u[:-1]) & 0xFF == u[-1]:
            out.append(bytes(u[:-1]))
    return out


def _basic_offsets(rec: bytes) -> list[int]:
    """Offsets of the basic-class displayed-values subrecords of a physiological record."""
    if struct.unpack_from("<h", rec, 14)[0] != 0:
        return []
    found = []
    for k in range(8):
        off, typ = struct.unpack_from("<hB", rec, 16 + 3 * k)
        if typ == 0xFF:
            break
        sub = 40 + off
        if typ == 1 and (struct.unpack_from("<H", rec, sub + 276)[0] >> 8) & 0xF == 0:
            found.append(sub)
    return found


def _frame(rec: bytes) -> bytes:
    body = rec + bytes([sum(rec) & 0xFF])
    return b"\x7e" + body.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e") + b"\x7e"


def test_rr_tile_from_an_s5_capture_over_a_pty(tmp_path):
    from chairside.domain.clock import WallClock
    from chairside.service import MonitorService

    data = (VEC / "short.raw").read_bytes()
    recs = [r for r in _frames(data) if _basic_offsets(r)]
    last_rr = struct.unpack_from("<h", recs[-1], _basic_offsets(recs[-1])[0] + CO2_RR)[0]
    master, slave = os.openpty()
    import tty
    tty.setraw(slave)
    svc = MonitorService(clock=WallClock(), port=os.ttyname(slave), driver="ge-s5", session_dir=tmp_path)
    svc.start()
    try:
        deadline = time.monotonic() + 10
        while svc.snapshot().device.link_state not in ("connected", "receiving", "up") and time.monotonic() < deadline:
            time.sleep(0.05)
        os.write(master, data)
        tile = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            tiles = {t.key: t for t in svc.snapshot().tiles}
            tile = tiles.get("rr")
            if tile is not None and tile.value == last_rr:
                break
            time.sleep(0.1)
        assert tile is not None, "no RR tile from the S/5 capture"
        assert tile.value == last_rr and tile.unit == "/min"
        # no session, so the phase is pre-infusion: the RR ladders of the limits data have tiers in
        # infusion and recovery only, so no limit is drawn beside the tile yet
        pre = [t for ld in LIMITS["ladder"] if ld.get("param") == "rr" for t in ld["tiers"]
               if "pre_infusion" in t["phases"]]
        assert not pre and (tile.low, tile.high) == (None, None)
    finally:
        svc.stop()
        svc.shutdown()
        os.close(master)
        os.close(slave)


def test_a_slow_rr_in_an_s5_capture_raises_the_high_rr_alarm(tmp_path):
    from chairside.store import read_session

    high = _tier("rr_low", "high")
    slow = high["limit"] - 1
    delay = _num(high["delay_s"])
    recs = _frames((VEC / "db02.raw").read_bytes())
    basic = [i for i, r in enumerate(recs) if _basic_offsets(r)]
    assert len(basic) > 60
    changed_from = basic[30]
    out = bytearray()
    first_slow: datetime | None = None
    for i, rec in enumerate(recs):
        rec = bytearray(rec)
        if i >= changed_from:
            for sub in _basic_offsets(rec):
                struct.pack_into("<h", rec, sub + CO2_RR, slow)
            if first_slow is None and _basic_offsets(rec):
                first_slow = datetime.fromtimestamp(struct.unpack_from("<I", rec, 6)[0]).astimezone()
        out += _frame(bytes(rec))
    capture = tmp_path / "db02-slow-rr.raw"
    capture.write_bytes(bytes(out))
    session = tmp_path / "replayed.chairside"
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"))
    env.pop("CHAIRSIDE_CONFIG", None)
    p = subprocess.run([sys.executable, "-m", "chairside.cli", "replay", str(capture), "--driver", "ge-s5",
                        "--phase", "infusion", "--headless", "--session", str(session)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    events = read_session(session).events
    rr = [r for e in events if e.kind == "readings_recorded" for r in e.readings if r.param == "rr"]
    assert rr and {r.source for r in rr} == {"co2"}
    assert min(r.value for r in rr if r.valid) == slow and max(r.value for r in rr if r.valid) >= 15
    raised = [e for e in events if e.kind in ("alarm_raised", "alarm_escalated") and (e.rule or "").startswith("rr_low")]
    assert raised, [e.kind for e in events if e.kind.startswith("alarm")]
    top = [e for e in raised if (getattr(e, "priority", None) or getattr(e, "to_priority", None)) == "high"]
    assert top, raised
    assert first_slow is not None
    assert (top[0].t - first_slow).total_seconds() >= delay - 1e-6
