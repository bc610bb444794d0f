"""``chairside export``: csv and jsonl keep their documented shapes; the report formats
write their files through the command.

The csv/jsonl shapes are the ones documented in ``chairside/commands/export.py`` and in
issue 2: csv = one row per reading with the columns ``t, param, value, unit, valid, flags,
source, device_time, receive_time``; jsonl = one event per line (canonical JSON, readings
included). The expected column list is written here, not imported, so a change to the
shape fails this test.
"""

from __future__ import annotations

import csv
import json

import pytest

import report_scenario as rs
from report_scenario import esk_file, iv_file  # noqa: F401 (fixtures)
from chairside.cli import main
from chairside.domain.events import EventAdapter

CSV_COLUMNS = ["t", "param", "value", "unit", "valid", "flags", "source", "device_time", "receive_time"]
EVENT_KEYS = {"seq", "t", "mono", "author", "kind"}


@pytest.fixture()
def stored(iv_file):
    from chairside.store import SessionFile

    sf = SessionFile.open(iv_file, readonly=True)
    try:
        return iv_file, sf.events()
    finally:
        sf.close()


def test_csv_shape(tmp_path, stored):
    path, events = stored
    out = tmp_path / "r.csv"
    assert main(["export", str(path), "--format", "csv", "--out", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as f:
        assert f.readline().startswith("# Chairside session ")  # provenance: hash and signing key
        rows = list(csv.reader(f))
    assert rows[0] == CSV_COLUMNS
    readings = [r for e in events if e.kind == "readings_recorded" for r in e.readings]
    assert len(rows) - 1 == len(readings)
    for row, r in zip(rows[1:], readings):
        d = dict(zip(CSV_COLUMNS, row))
        assert d["param"] == r.param and d["unit"] == r.unit and d["source"] == r.source
        assert d["valid"] == ("true" if r.valid else "false")
        assert (float(d["value"]) if d["value"] else None) == r.value  # missing is empty, never 0
        assert d["flags"] == ";".join(r.flags)


def test_jsonl_shape(tmp_path, stored):
    path, events = stored
    out = tmp_path / "e.jsonl"
    assert main(["export", str(path), "--format", "jsonl", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(events)
    for line, e in zip(lines, events):
        obj = json.loads(line)
        assert EVENT_KEYS <= set(obj) and obj["seq"] == e.seq and obj["kind"] == e.kind
        assert EventAdapter.validate_json(line) == e
        if e.kind == "readings_recorded":
            assert len(obj["readings"]) == len(e.readings) == obj["count"]


def test_report_formats_through_the_command(tmp_path, iv_file, esk_file, capsys):
    for fmt, name in (("html", "r.html"), ("fhir", "r.fhir.json")):
        out = tmp_path / name
        assert main(["export", str(iv_file), "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 10_000
    out = tmp_path / "r.rems.json"
    assert main(["export", str(esk_file), "--format", "rems-json", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["dose"]["mg"] == rs.esketamine_session()[1]["mg"]


def test_rems_json_of_an_iv_session_is_bad_input(tmp_path, iv_file, capsys):
    try:
        code = main(["export", str(iv_file), "--format", "rems-json", "--out", str(tmp_path / "x.json")])
    except ValueError:
        pytest.xfail("commands/export.py does not turn the exporter's ValueError into exit 2 yet (requested)")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an esketamine session" in err[0]
    assert not (tmp_path / "x.json").exists()
