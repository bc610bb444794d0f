"""#15 item 3, end to end: the IHE Philips gateway example (every OBX with result status ``X``)
with its NIBP changed to 230/130 raises the high BP alarms, marked questionable.

Real path: an independent MLLP client (python-hl7's ``MLLPClient``) -> loopback TCP ->
``chairside record --port listen://127.0.0.1:P`` (listener -> hl7 driver -> service -> alarm
engine -> store) -> the session file. Expected alarms come from the limits data: 230 and 130
are beyond the high tiers of sbp_high / dbp_high in every phase that has one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from hl7.client import MLLPClient

ROOT = Path(__file__).resolve().parents[2]
VEC = ROOT.parent / "shared" / "vectors" / "hl7" / "ihe-pcd-tf-appendix-e.hl7.txt"
LIMITS = tomllib.loads((ROOT / "src" / "chairside" / "data" / "limits" / "standard.toml").read_text())


def philips_message(sys_: str, dia: str, status: str = "X") -> str:
    """E.1.1 (the first message of the vector file) with NIBP sys/dia replaced."""
    segs: list[str] = []
    for ln in VEC.read_text().splitlines():
        if ln.startswith("#") or not ln.strip():
            if segs and ln.startswith("#"):
                break
            continue
        f = ln.split("|")
        if f[0] == "OBX" and f[3].startswith("150021^"):
            f[5] = sys_
        if f[0] == "OBX" and f[3].startswith("150022^"):
            f[5] = dia
        if f[0] == "OBX" and len(f) > 11:
            f[11] = status
        segs.append("|".join(f))
    assert segs[0].startswith("MSH|") and "PAT_DEVICE_PHILIPS_C" in segs[0]
    return "\r".join(segs) + "\r"


def high_limit(rule: str) -> float:
    (ld,) = [ld for ld in LIMITS["ladder"] if ld["name"] == rule]
    return max(t["limit"] for t in ld["tiers"] if t["priority"] == "high")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_and_send(tmp_path: Path, message: str) -> tuple[list, str, str]:
    session = tmp_path / "hl7.chairside"
    port = free_port()
    env = dict(os.environ, CHAIRSIDE_LOG_DIR=str(tmp_path / "log"))
    env.pop("CHAIRSIDE_CONFIG", None)
    exe = Path(sys.executable).parent / "chairside"
    proc = subprocess.Popen([str(exe), "record", "--port", f"listen://127.0.0.1:{port}", "--driver", "hl7",
                             "--session", str(session), "--duration", "8", "--weight", "80"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = MLLPClient("127.0.0.1", port)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(f"listener never came up: {proc.stderr.read() if proc.poll() is not None else ''}")
                time.sleep(0.1)
        with client:
            ack = client.send_message(message)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    from chairside.store import read_session

    return list(read_session(session).events), err, ack.decode() if isinstance(ack, bytes) else str(ack)


def test_questionable_bp_230_130_raises_the_high_alarms_marked_questionable(tmp_path):
    assert 230 >= high_limit("sbp_high") and 130 >= high_limit("dbp_high")
    events, err, ack = record_and_send(tmp_path, philips_message("230", "130", status="X"))
    assert "MSA|AA" in ack
    raised = [e for e in events if e.kind == "alarm_raised" and e.alarm_class == "physiological"]
    # one alarm for the NIBP group (issue 15 item 6), naming both conditions
    assert len(raised) == 1, [(e.rule, e.priority) for e in raised]
    e = raised[0]
    assert e.priority == "high" and e.param == "nibp_sys" and e.value == 230
    assert "230" in e.message and "130" in e.message, e.message
    assert "questionable" in e.message, e.message
    assert "questionable" in err  # record's stderr alarm lines say so too
