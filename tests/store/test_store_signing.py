"""Signed session files: a re-chained file fails verify; keys per installation; trust.

The attacks are written as an attacker would write them, with sqlite3 and hashlib only,
from the formulas documented in canonical.py and signing.py (not with the store's code).
Every test runs with its own installation key folder (CHAIRSIDE_KEY_DIR under tmp_path)
so no test touches the user's config folder nor depends on another test's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from store_testkit import attacker, clock, opened, raw_rows, six_readings

from chairside.cli import main
from chairside.domain import events as ev
from chairside.store import DamagedSessionFile, SessionFile, read_session, verify

GENESIS = "0" * 64


@pytest.fixture(autouse=True)
def own_keys(tmp_path, monkeypatch):
    folder = tmp_path / "keys-here"
    monkeypatch.setenv("CHAIRSIDE_KEY_DIR", str(folder))
    return folder


def _record(path, *, signer="default"):
    """A closed session with a labetalol 10 mg bolus among readings and notes."""
    c = clock()
    kw = {} if signer == "default" else {"signer": signer}
    sf = SessionFile.create(path, opened(c), c, **kw)
    for k in range(12):
        c.advance(1.0)
        sf.append_readings(six_readings(c.now(), k))
        if k == 5:
            sf.flush()  # the bolus is a commit of its own
            sf.append(ev.InterventionGiven(t=c.now(), drug="labetalol", dose=10.0, dose_unit="mg",
                                           route="IV", author="AB"))
        if k == 8:
            sf.append(ev.NoteAdded(t=c.now(), text="BP settling", author="AB"))
    sf.append(ev.SessionClosed(t=c.now(), author="AB"))
    sf.close()
    return path


def _labetalol_seq(path):
    return next(r[0] for r in raw_rows(path) if r[1] == "intervention_given")


def rechain_attack(path, new_dose=100.0):
    """The 15-line attack of issue 17: edit the dose, recompute the chain and the head."""
    con = attacker(path)
    prev = GENESIS
    for seq, body in con.execute("SELECT seq, body FROM events ORDER BY seq").fetchall():
        obj = json.loads(body)
        if obj["kind"] == "intervention_given" and obj["drug"] == "labetalol":
            obj["dose"] = new_dose
            body = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        h = hashlib.sha256(bytes.fromhex(prev) + body.encode("utf-8")).hexdigest()
        con.execute("UPDATE events SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?", (body, prev, h, seq))
        prev = h
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (prev,))
    con.close()


def _signed_message(seq, h):
    # the documented message (signing.py): prefix, seq as 8 bytes big-endian, the hash's bytes
    return b"chairside-session-head/1\x00" + seq.to_bytes(8, "big") + bytes.fromhex(h)


def _fp(raw):
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def test_the_rechain_attack_fails_verify_naming_the_edited_event(tmp_path, capsys):
    p = _record(tmp_path / "s.chairside")
    seq = _labetalol_seq(p)
    assert main(["verify", str(p)]) == 0
    capsys.readouterr()
    rechain_attack(p)
    dose = json.loads(next(r[3] for r in raw_rows(p) if r[0] == seq))["dose"]
    assert dose == 100.0  # the attack did what it says
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq and r.count == seq - 1
    assert "signature" in r.reason and f"seq {seq}" in r.reason
    assert main(["verify", str(p)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and f"first bad event: event seq {seq}" in out


def test_a_rechained_file_is_refused_by_readers(tmp_path):
    p = _record(tmp_path / "s.chairside")
    rechain_attack(p)
    with pytest.raises(DamagedSessionFile) as exc:
        read_session(p)
    assert f"seq {_labetalol_seq(p)}" in str(exc.value)


def test_rechain_and_strip_the_signatures_is_unsigned_and_fails(tmp_path, capsys):
    p = _record(tmp_path / "s.chairside")
    rechain_attack(p)
    con = attacker(p)
    con.execute("DROP TABLE signatures")
    con.execute("DROP TABLE signing_keys")
    con.close()
    assert main(["verify", str(p)]) == 1
    out = capsys.readouterr().out
    assert "UNSIGNED" in out and out.count("\n") == 1


def test_rechain_and_delete_the_later_signatures_fails(tmp_path):
    p = _record(tmp_path / "s.chairside")
    seq = _labetalol_seq(p)
    rechain_attack(p)
    con = attacker(p)
    con.execute("DELETE FROM signatures WHERE seq >= ?", (seq,))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == seq and "not signed" in r.reason


def test_rechain_and_resign_with_the_attackers_own_key_is_untrusted(tmp_path, capsys):
    p = _record(tmp_path / "s.chairside")
    rechain_attack(p)
    mine = Ed25519PrivateKey.generate()
    raw = mine.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    con = attacker(p)
    con.execute("DELETE FROM signatures")
    con.execute("DELETE FROM signing_keys")
    con.execute("INSERT INTO signing_keys(id, fingerprint, algorithm, public_key, first_seq) VALUES (1,?,?,?,1)",
                (_fp(raw), "ed25519", raw))
    heads = con.execute("SELECT seq, hash FROM events ORDER BY seq").fetchall()
    for seq, h in heads:
        con.execute("INSERT INTO signatures(seq, key_id, sig) VALUES (?,?,?)", (seq, 1, mine.sign(_signed_message(seq, h))))
    con.close()
    r = verify(p)
    assert r.ok and r.signed and r.keys == (_fp(raw),)  # a well-formed forgery...
    assert main(["verify", str(p)]) == 1  # ...by a key nobody trusts
    out = capsys.readouterr().out
    assert "UNTRUSTED" in out and _fp(raw) in out


def test_signatures_check_with_the_documented_message(tmp_path):
    """Every commit's head is signed; an independent Ed25519 check of the documented bytes."""
    p = _record(tmp_path / "s.chairside")
    con = sqlite3.connect(str(p))
    keys = con.execute("SELECT id, fingerprint, algorithm, public_key FROM signing_keys").fetchall()
    sigs = con.execute("SELECT seq, key_id, sig FROM signatures ORDER BY seq").fetchall()
    con.close()
    assert len(keys) == 1 and keys[0][2] == "ed25519" and keys[0][1] == _fp(keys[0][3])
    pub = Ed25519PublicKey.from_public_bytes(keys[0][3])
    hashes = {r[0]: r[5] for r in raw_rows(p)}
    assert sigs[0][0] == 1 and sigs[-1][0] == max(hashes)  # the first event and the head
    for seq, _kid, sig in sigs:
        pub.verify(sig, _signed_message(seq, hashes[seq]))  # raises if not
    # a group commit is one signature: fewer signatures than events
    assert len(sigs) < len(hashes)


def test_the_key_is_per_installation_0600_and_named_by_verify(tmp_path, own_keys, capsys):
    p = _record(tmp_path / "s.chairside")
    key = own_keys / "installation.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(own_keys.stat().st_mode) & 0o077 == 0
    priv = serialization.load_pem_private_key(key.read_bytes(), password=None)
    fp = _fp(priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    assert main(["verify", str(p)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok: ") and fp in lines[1] and "this installation" in lines[1]
    assert main(["keys"]) == 0
    assert f"fingerprint: {fp}" in capsys.readouterr().out
    # a second session uses the same key
    p2 = _record(tmp_path / "s2.chairside")
    assert verify(p2).keys == (fp,)


def test_default_key_folder_is_in_the_isolated_config_folder(monkeypatch):
    """With no CHAIRSIDE_KEY_DIR the key lives in the user config folder, which the test
    conftest points at a scratch folder: never the real one."""
    from chairside.keys import key_dir

    monkeypatch.delenv("CHAIRSIDE_KEY_DIR")
    folder = key_dir()
    assert folder.parent.name == "chairside" and folder.name == "keys"
    assert folder.is_relative_to(os.environ["XDG_CONFIG_HOME"])
    assert not folder.is_relative_to(os.path.expanduser("~/.config"))


def test_another_machine_verifies_with_the_exported_key(tmp_path, monkeypatch, capsys):
    p = _record(tmp_path / "s.chairside")
    pem = tmp_path / "clinic-a.pem"
    assert main(["keys", "--export", str(pem)]) == 0
    capsys.readouterr()
    assert b"PRIVATE" not in pem.read_bytes()
    # another installation: its own (empty) key folder
    monkeypatch.setenv("CHAIRSIDE_KEY_DIR", str(tmp_path / "machine-b"))
    assert main(["verify", str(p)]) == 1
    assert "UNTRUSTED" in capsys.readouterr().out
    assert main(["verify", str(p), "--key", str(pem)]) == 0
    assert f"--key {pem}" in capsys.readouterr().out
    assert main(["keys", "--trust", str(pem)]) == 0
    capsys.readouterr()
    assert main(["verify", str(p)]) == 0
    assert "trusted: " in capsys.readouterr().out


def test_old_unsigned_file_says_unsigned(tmp_path, capsys):
    p = _record(tmp_path / "old.chairside", signer=None)
    con = sqlite3.connect(str(p))
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert tables == {"meta", "events", "readings"}  # the layout older versions wrote
    assert main(["verify", str(p)]) == 1
    out = capsys.readouterr().out
    assert "UNSIGNED" in out and "intact" in out
    assert main(["verify", str(p), "--allow-unsigned"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ") and "UNSIGNED" in captured.err
    assert read_session(p).verified.signed is False  # readers still read it


def test_resuming_an_unsigned_file_signs_it_from_then_on(tmp_path):
    p = _record(tmp_path / "old.chairside", signer=None)
    c = clock()
    sf = SessionFile.open(p, c)
    sf.append(ev.Amendment(t=c.now(), target_seq=2, reason="late entry", author="AB"))
    sf.close()
    r = verify(p)
    assert r.ok and r.signed and len(r.keys) == 1


def test_a_truncated_file_with_a_rewritten_head_is_caught_by_its_signatures(tmp_path):
    p = _record(tmp_path / "s.chairside")
    rows = raw_rows(p)
    n = len(rows)
    con = attacker(p)
    con.execute("DELETE FROM readings WHERE batch_seq >= ?", (n - 1,))
    con.execute("DELETE FROM events WHERE seq >= ?", (n - 1,))
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (str(n - 2),))
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (rows[n - 3][5],))
    con.close()
    r = verify(p)
    assert not r.ok and r.first_bad_seq == n - 1 and "missing" in r.reason


def test_no_usable_key_records_unsigned_and_says_why(tmp_path, monkeypatch, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    monkeypatch.setenv("CHAIRSIDE_KEY_DIR", str(blocked / "keys"))
    c = clock()
    sf = SessionFile.create(tmp_path / "s.chairside", opened(c), c)
    sf.append_readings(six_readings(c.now()))
    sf.close()
    assert sf.signing_problem and "signing key" in sf.signing_problem
    assert "UNSIGNED" in caplog.text
    r = verify(tmp_path / "s.chairside")
    assert r.ok and not r.signed


def test_two_processes_creating_the_key_at_once_share_it(tmp_path):
    folder = tmp_path / "race"
    code = ("import sys; from chairside.keys import installation_signer; "
            "print(installation_signer().fingerprint)")
    env = dict(os.environ, CHAIRSIDE_KEY_DIR=str(folder))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    fps = {pr.communicate(timeout=60)[0].strip() for pr in procs}
    assert len(fps) == 1 and fps.pop().startswith("SHA256:")
    assert sorted(x.name for x in folder.iterdir()) == ["installation.key"]


def test_every_report_names_the_signing_key(tmp_path, own_keys, capsys):
    """html (header, page footer, end note), fhir (meta.tag), csv (first line), rems fields."""
    p = _record(tmp_path / "s.chairside")
    priv = serialization.load_pem_private_key((own_keys / "installation.key").read_bytes(), password=None)
    fp = _fp(priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    head = raw_rows(p)[-1][5]
    html, fhir, csv_out = tmp_path / "r.html", tmp_path / "r.fhir.json", tmp_path / "r.csv"
    assert main(["export", str(p), "--format", "html", "--out", str(html)]) == 0
    assert main(["export", str(p), "--format", "fhir", "--out", str(fhir)]) == 0
    assert main(["export", str(p), "--format", "csv", "--out", str(csv_out)]) == 0
    text = html.read_text()
    assert text.count(fp) >= 3 and head in text
    tags = json.loads(fhir.read_text())["meta"]["tag"]
    assert {"system": "urn:chairside:signing-key", "code": fp} in [{k: t[k] for k in ("system", "code")} for t in tags]
    first = csv_out.read_text().splitlines()[0]
    assert first == f"# Chairside session sess-1; last event hash {head}; signed by installation key {fp}"


def test_an_unsigned_file_says_so_on_its_report(tmp_path):
    p = _record(tmp_path / "old.chairside", signer=None)
    out = tmp_path / "r.html"
    assert main(["export", str(p), "--format", "html", "--out", str(out)]) == 0
    assert "UNSIGNED" in out.read_text()


def test_the_debrief_and_the_course_name_the_signing_key(tmp_path, own_keys, capsys):
    """The other reports made from session files: ``debrief`` (md, html, jsonl header) and
    ``course`` (table, json, csv, html) carry the fingerprint read from the key file; an
    unsigned session in the course is named UNSIGNED."""
    folder = tmp_path / "sessions"
    folder.mkdir()
    p = _record(folder / "a.chairside")
    _record(folder / "b.chairside", signer=None)
    priv = serialization.load_pem_private_key((own_keys / "installation.key").read_bytes(), password=None)
    fp = _fp(priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    head = raw_rows(p)[-1][5]
    capsys.readouterr()
    for fmt in ("md", "html", "jsonl"):
        assert main(["debrief", str(p), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert fp in out and head in out, fmt
    assert main(["debrief", str(p), "--format", "jsonl"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["type"] == "header" and first["signing_keys"] == [fp] and first["last_hash"] == head
    outs = {}
    for fmt in ("table", "json", "csv", "html"):
        assert main(["course", "P-0001", "--folder", str(folder), "--format", fmt]) == 0
        outs[fmt] = capsys.readouterr().out
        assert f"signed by installation key {fp}" in outs[fmt] and "UNSIGNED" in outs[fmt], fmt
    rows = [json.loads(line) for line in outs["json"].splitlines()]
    assert sorted(r["signing"].split(" (")[0] for r in rows) == sorted([f"signed by installation key {fp}", "UNSIGNED"])
