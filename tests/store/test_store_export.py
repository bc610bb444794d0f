"""``chairside export``: csv (a row per reading), jsonl (an event per line), report dispatch."""

from __future__ import annotations

import csv
import importlib
import io
import json
from datetime import timedelta

import pytest
from store_testkit import T0, attacker, clock, opened, six_readings

from chairside.cli import main
from chairside.domain import events as ev
from chairside.store import SessionFile


@pytest.fixture
def session(tmp_path):
    c = clock()
    p = tmp_path / "s.chairside"
    sf = SessionFile.create(p, opened(c), c)
    sent = []
    for k in range(5):
        c.advance(1)
        rs = six_readings(c.now(), k)
        sent.extend(rs)
        sf.append_readings(rs)
    sf.append(ev.NoteAdded(t=c.now(), text="note, with a comma", author="AB"))
    sf.append(ev.SessionClosed(t=c.now(), author="AB"))
    sf.close()
    return p, sent


def test_csv_a_row_per_reading(session, capsys):
    p, sent = session
    assert main(["export", str(p), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    first, rest = out.split("\n", 1)
    assert first.startswith("# Chairside session sess-1; last event hash ") and "signed by installation key SHA256:" in first
    rows = list(csv.reader(io.StringIO(rest)))
    assert rows[0] == ["t", "param", "value", "unit", "valid", "flags", "source", "device_time", "receive_time"]
    body = rows[1:]
    assert len(body) == len(sent)
    for row, r in zip(body, sent):
        t, param, value, unit, valid, flags, source, dev, rcv = row
        assert param == r.param and unit == r.unit and source == r.source
        assert valid == ("true" if r.valid else "false")
        if r.value is None:
            assert value == "" and flags == "no_data"  # missing is empty, never 0
        else:
            assert float(value) == r.value
        assert dev == r.device_time.isoformat().replace("+00:00", "Z")
        assert rcv == (r.device_time + timedelta(milliseconds=40)).isoformat().replace("+00:00", "Z")
        assert t == dev
    assert any(row[2] == "" for row in body)


def test_jsonl_an_event_per_line_canonical(session, tmp_path):
    p, sent = session
    out = tmp_path / "out.jsonl"
    assert main(["export", str(p), "--format", "jsonl", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    objs = [json.loads(line) for line in lines]
    assert [o["seq"] for o in objs] == list(range(1, len(objs) + 1))
    for line, o in zip(lines, objs):
        assert line == json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert objs[0]["kind"] == "session_opened" and objs[-1]["kind"] == "session_closed"
    readings = [r for o in objs if o["kind"] == "readings_recorded" for r in o["readings"]]
    assert len(readings) == len(sent)
    assert [r["value"] for r in readings] == [r.value for r in sent]


def test_export_of_a_damaged_file_exits_2(session, capsys):
    p, _ = session
    con = attacker(p)
    con.execute("DELETE FROM events WHERE seq = 2")
    con.close()
    assert main(["export", str(p), "--format", "csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seq 2" in err


def test_export_of_garbage_exits_2(tmp_path, capsys):
    p = tmp_path / "x.chairside"
    p.write_text("garbage")
    assert main(["export", str(p), "--format", "jsonl"]) == 2
    assert str(p) in capsys.readouterr().err


@pytest.mark.parametrize("fmt,module", [("html", "html"), ("fhir", "fhir"), ("rems-json", "rems")])
def test_report_formats_dispatch(session, tmp_path, monkeypatch, fmt, module):
    """Each report format goes to its module's export(path, out) in chairside.reports."""
    from chairside.commands import export as export_cmd

    p, _ = session
    assert export_cmd.REPORTS[fmt] is importlib.import_module(f"chairside.reports.{module}").export
    calls = []

    def export(path, out=None):
        calls.append((path, out))
        return out

    monkeypatch.setitem(export_cmd.REPORTS, fmt, export)
    target = tmp_path / f"r.{fmt}"
    assert main(["export", str(p), "--format", fmt, "--out", str(target)]) == 0
    assert calls == [(p, target)]


def test_t_column_falls_back_to_receive_time(tmp_path, capsys):
    from chairside.domain.readings import Reading

    c = clock()
    p = tmp_path / "s.chairside"
    sf = SessionFile.create(p, opened(c), c)
    sf.append_readings([Reading(param="hr", value=71, unit="bpm", receive_time=T0, source="ecg")])
    sf.close()
    assert main(["export", str(p), "--format", "csv"]) == 0
    row = list(csv.reader(io.StringIO(capsys.readouterr().out.split("\n", 1)[1])))[1]
    assert row[0] == "2026-03-02T09:00:00Z" and row[7] == "" and row[8] == "2026-03-02T09:00:00Z"


# --- an export never overwrites a record ---------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "html"])
def test_out_naming_the_session_file_is_refused_and_nothing_changes(session, capsys, fmt):
    p, _ = session
    before = p.read_bytes()
    for out in (str(p), str(p.parent / "." / p.name), str(p) + "-wal"):
        assert main(["export", str(p), "--format", fmt, "--out", out]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "refusing to overwrite" in err and p.name in err
    assert p.read_bytes() == before and not (p.parent / (p.name + "-wal")).exists()
    link = p.parent / "alias.csv"
    link.symlink_to(p)
    assert main(["export", str(p), "--format", fmt, "--out", str(link)]) == 2
    assert p.read_bytes() == before
    sf = SessionFile.open(p, readonly=True)  # still a session file that verifies
    assert sf.head_seq >= 3
    sf.close()


def test_out_naming_another_session_file_is_refused(session, tmp_path, capsys):
    p, _ = session
    other = tmp_path / "other.chairside"
    c = clock()
    SessionFile.create(other, opened(c, session_id="sess-2"), c).close()
    before = other.read_bytes()
    assert main(["export", str(p), "--format", "csv", "--out", str(other)]) == 2
    assert "is a chairside session file" in capsys.readouterr().err
    assert other.read_bytes() == before


def test_failed_export_leaves_the_earlier_output_and_no_temporary_file(session, tmp_path, monkeypatch, capsys):
    import chairside.commands.export as export_cmd

    p, _ = session
    out = tmp_path / "s.csv"
    out.write_text("an earlier export\n")

    def full_disk(events, f, *provenance):
        f.write("t,param\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_cmd, "write_csv", full_disk)
    assert main(["export", str(p), "--format", "csv", "--out", str(out)]) == 1  # a failed write, not bad usage
    assert "write failed (No space left on device)" in capsys.readouterr().err
    assert out.read_text() == "an earlier export\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(["s.chairside", "s.csv"])
