"""The patient's course and the REMS clock (issue 19), on sessions made by the scripted-session
tool (``chairside train --script``): the expected values come from the scripts' inputs and
the published definitions (response: a drop of >= 50 % from the course's first score;
remission: PHQ-9 < 5 [Kroenke 2001]; REMS form within 7 days), not from the code."""

from __future__ import annotations

import json
import os
import stat
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chairside.cli import main
from chairside.store import verify
from chairside.training_script import run_script

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)

IV_SCRIPT = """
[[step]]
at = "0:00"
do = "open_session"
patient_id = "{pid}"

[[step]]
at = "0:30"
do = "observe"
scale = "phq9"
score = {phq9}

[[step]]
at = "6:30"
do = "baseline"

[[step]]
at = "7:00"
do = "start_infusion"
dose_mg_kg = 0.5
over_min = 40

[[step]]
at = "10:00"
do = "close"
"""

ESK_SCRIPT = """
[[step]]
at = "0:00"
do = "open_session"
patient_id = "{pid}"
protocol = "esketamine"
staff = ["RN", "MD"]

[[step]]
at = "0:30"
do = "note"
text = "short scripted esketamine session for the REMS clock"

[[step]]
at = "5:00"
do = "close"
"""


def session(folder: Path, name: str, script: str, *, scenario: str = "uneventful", start: datetime = START,
            seed: int = 1) -> Path:
    steps = folder / f"{name}.steps.toml"
    steps.write_text(script)
    path = folder / f"{name}.chairside"
    run_script(scenario=scenario, script=steps, seed=seed, session=path, start=start, out=open(os.devnull, "w"))
    steps.unlink()
    return path


@pytest.fixture(scope="module")
def course_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
    # six sessions of one patient, three days apart, PHQ-9 20 16 12 9 6 4
    for i, score in enumerate([20, 16, 12, 9, 6, 4]):
        session(folder, f"p1-{i}", IV_SCRIPT.format(pid="PT-ALPHA", phq9=score), start=START + timedelta(days=3 * i),
                seed=i + 1)
    # another patient in the same folder
    session(folder, "p2-0", IV_SCRIPT.format(pid="PT-BRAVO", phq9=25), start=START + timedelta(days=1), seed=9)
    return folder


def course_json(folder: Path, pid: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["course", pid, "--folder", str(folder), "--format", "json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_response_from_the_fourth_and_remission_at_the_sixth(course_folder, capsys):
    rows = [r for r in course_json(course_folder, "PT-ALPHA", capsys) if r["status"] == "ok"]
    assert [r["outcomes"]["phq9"] for r in rows] == [20, 16, 12, 9, 6, 4]
    assert [r["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
    # response: <= 50 % of the first score (20 -> 10): 9 is the first at or below it
    assert [r["response"]["phq9"] for r in rows] == [False, False, False, True, True, True]
    # remission: PHQ-9 below 5
    assert [r["remission"]["phq9"] for r in rows] == [False, False, False, False, False, True]
    assert [r["opened"][:10] for r in rows] == sorted(r["opened"][:10] for r in rows)


def test_two_patients_never_mix(course_folder, capsys):
    alpha = course_json(course_folder, "PT-ALPHA", capsys)
    bravo = course_json(course_folder, "PT-BRAVO", capsys)
    assert {r["patient_id"] for r in alpha if r["status"] == "ok"} == {"PT-ALPHA"}
    assert [r["outcomes"]["phq9"] for r in bravo if r["status"] == "ok"] == [25]


def test_the_course_reports_the_dose_of_the_order(course_folder, capsys):
    rows = course_json(course_folder, "PT-ALPHA", capsys)
    # each script closes 3 min after the start of a 0.5 mg/kg / 40 min order: 3/40 of it
    for r in rows:
        assert r["dose_mg_kg"] == pytest.approx(0.5 * 3 / 40, abs=0.005)


def test_a_damaged_file_is_listed_as_damaged(course_folder, tmp_path, capsys):
    import shutil

    folder = tmp_path / "f"
    folder.mkdir()
    for p in sorted(course_folder.glob("p1-*.chairside"))[:2]:
        shutil.copy(p, folder / p.name)
    bad = folder / "broken.chairside"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    capsys.readouterr()
    assert main(["course", "PT-ALPHA", "--folder", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "broken.chairside" in out
    assert out.count("#") >= 2


def test_unknown_patient_names_the_nearby_pseudonyms(course_folder, capsys):
    capsys.readouterr()
    assert main(["course", "PT-ALPH", "--folder", str(course_folder)]) == 2
    err = capsys.readouterr().err
    assert "PT-ALPHA" in err and "Traceback" not in err


def test_an_unreadable_folder_is_one_line(tmp_path, capsys):
    capsys.readouterr()
    assert main(["course", "PT-ALPHA", "--folder", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_the_index_is_private_incremental_and_verifiable(course_folder, capsys):
    index = course_folder / ".chairside-index.sqlite"
    course_json(course_folder, "PT-ALPHA", capsys)
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["course", "--verify-index", "--folder", str(course_folder)]) == 0
    assert "index ok" in capsys.readouterr().out


def test_html_course_has_one_chart(course_folder, tmp_path, capsys):
    out = tmp_path / "course.html"
    assert main(["course", "PT-ALPHA", "--folder", str(course_folder), "--format", "html", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("<svg") == 1 and "phq9" in text and "peak SBP" in text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_rems_overdue_then_filed_and_the_file_still_verifies(tmp_path, capsys):
    folder = tmp_path / "rems"
    folder.mkdir()
    today = date(2026, 11, 20)
    eight_days_ago = datetime(2026, 11, 12, 9, 0, tzinfo=timezone.utc)
    path = session(folder, "esk", ESK_SCRIPT.format(pid="PT-ESK"), start=eight_days_ago)
    iv = session(folder, "iv", IV_SCRIPT.format(pid="PT-IV", phq9=10), start=eight_days_ago)
    capsys.readouterr()
    assert main(["rems", "--folder", str(folder), "--today", today.isoformat()]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    # 8 calendar days after the session, the 7-day window closed a day ago; the IV session needs no form
    assert len(lines) == 1 and "PT-ESK" in lines[0] and "OVERDUE by 1 day" in lines[0]
    assert main(["rems", "--filed", str(iv), "--by", "RN", "--folder", str(folder)]) == 2
    assert "esketamine" in capsys.readouterr().err
    assert main(["rems", "--filed", str(path), "--by", "RN", "--reference", "REMS-123"]) == 0
    capsys.readouterr()
    assert main(["rems", "--folder", str(folder), "--today", today.isoformat()]) == 0
    assert "PT-ESK" not in capsys.readouterr().out
    assert verify(path).ok
    assert main(["rems", "--filed", str(path), "--by", "RN"]) == 2  # already filed


def test_rems_filed_is_signed_like_any_event_and_a_forged_filing_fails(tmp_path, monkeypatch, capsys):
    """``rems --filed`` appends to a closed record after the fact: the new head is signed by
    the installation key (checked here with Ed25519 and the message documented in
    store/signing.py, not with the store's code), and re-chaining the filing (another
    filer's initials) fails verify naming that event."""
    import hashlib
    import sqlite3

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    monkeypatch.setenv("CHAIRSIDE_KEY_DIR", str(tmp_path / "keys"))
    folder = tmp_path / "rems"
    folder.mkdir()
    path = session(folder, "esk", ESK_SCRIPT.format(pid="PT-ESK"), start=START)
    assert main(["rems", "--filed", str(path), "--by", "RN", "--reference", "REMS-9"]) == 0
    capsys.readouterr()

    con = sqlite3.connect(str(path))
    seq, body, h = con.execute("SELECT seq, body, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    assert json.loads(body)["kind"] == "rems_form_filed"
    row = con.execute("SELECT k.public_key, s.sig FROM signatures s JOIN signing_keys k ON k.id = s.key_id "
                      "WHERE s.seq = ?", (seq,)).fetchone()
    con.close()
    assert row is not None, "the filing's commit has no signature"
    message = b"chairside-session-head/1\x00" + seq.to_bytes(8, "big") + bytes.fromhex(h)
    Ed25519PublicKey.from_public_bytes(row[0]).verify(row[1], message)  # raises if it does not check
    assert main(["verify", str(path)]) == 0
    assert "signed: by SHA256:" in capsys.readouterr().out

    # the forger changes who filed it and re-chains the file (triggers dropped, as an attacker would)
    con = sqlite3.connect(str(path), isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    prev = "0" * 64
    for s, b in con.execute("SELECT seq, body FROM events ORDER BY seq").fetchall():
        obj = json.loads(b)
        if obj["kind"] == "rems_form_filed":
            obj["by"] = obj["author"] = "XX"
            b = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        nh = hashlib.sha256(bytes.fromhex(prev) + b.encode("utf-8")).hexdigest()
        con.execute("UPDATE events SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?", (b, prev, nh, s))
        prev = nh
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (prev,))
    con.close()
    r = verify(path)
    assert not r.ok and r.first_bad_seq == seq
    assert main(["verify", str(path)]) == 1
    assert f"event seq {seq}" in capsys.readouterr().out
