"""The board's model: states, Last Will, NOT REPORTING after the data file's delay, alarm
events kept once per record seq, malformed and foreign messages counted and ignored; the
clinic file and --chair refused with the chair named."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from chairside.board.local import BoardError, parse_chairs
from chairside.board.state import BoardModel

DATA = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data" / "board.toml"


def state(chair="chair-1", **kw):
    return json.dumps({"schema": "chairside-board/1", "chair": chair, "pseudonym": "P1", "phase": "infusion", **kw})


def test_not_reporting_after_the_data_files_delay_and_back():
    after = tomllib.loads(DATA.read_text())["board"]["not_reporting_after_s"]
    m = BoardModel()
    assert m.on_state("chair-1", state(), 100.0)
    assert m.tick(100.0 + after - 0.5) == []
    assert m.snapshot()[0]["status"] == "ok"
    assert m.tick(100.0 + after) == ["chair-1"]
    assert m.snapshot()[0]["status"] == "NOT REPORTING"
    m.on_state("chair-1", state(), 100.0 + after + 1)
    m.tick(100.0 + after + 1)
    assert m.snapshot()[0]["status"] == "ok"


def test_the_last_will_shows_offline():
    m = BoardModel()
    m.on_state("chair-1", state(), 1.0)
    m.on_online("chair-1", b"offline")
    assert m.snapshot()[0]["status"] == "OFFLINE"


def test_alarm_events_are_kept_once_per_seq():
    m = BoardModel()
    msg = json.dumps({"chair": "chair-1", "seq": 7, "kind": "alarm_raised", "t": "2026-01-01T00:00:00+00:00",
                      "alarm_id": "sbp_high#1", "priority": "high"})
    assert m.on_alarm("chair-1", msg, 1.0)
    assert not m.on_alarm("chair-1", msg, 2.0)
    assert m.duplicates == 1 and m.snapshot()[0]["alarm_events"] == 1


@pytest.mark.parametrize("payload", [b"{not json", b"[]", json.dumps({"chair": "chair-1"}).encode()[:-1]])
def test_malformed_messages_are_counted_and_ignored(payload):
    m = BoardModel()
    assert not m.on_state("chair-1", payload, 1.0)
    assert m.malformed == 1 and m.snapshot() == []


def test_foreign_messages_are_counted_and_ignored():
    m = BoardModel()
    assert not m.on_state("chair-1", state(chair="chair-2"), 1.0)  # a payload naming another chair
    assert not m.on_state("chair-1", json.dumps({"schema": "other/9", "chair": "chair-1"}), 1.0)
    assert m.foreign == 2 and m.snapshot() == []


def test_two_chairs_with_one_name_are_refused(tmp_path):
    with pytest.raises(BoardError, match="chair-1"):
        parse_chairs(["chair-1=socket://127.0.0.1:1", "chair-1=socket://127.0.0.1:2"])
    f = tmp_path / "chairs.toml"
    f.write_text('[[chair]]\nname = "a"\nport = "x"\ndriver = "nope"\n')
    with pytest.raises(BoardError, match=r"chair\[0\]\.driver"):
        parse_chairs([], f)
