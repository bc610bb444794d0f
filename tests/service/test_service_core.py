"""MonitorService without threads: feed readings as the link would, give commands, check
the record, the snapshot and the order "stored before published"."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest

from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.domain.protocol import load_template
from chairside.domain.readings import DeviceStatus, Reading
from chairside.domain.scales import get_scale
from chairside.service import CommandRefused, DischargeBlocked, GateBlocked, MonitorService
from chairside.store import SessionFile, read_session, verify

DATA = Path(__file__).resolve().parents[2] / "src" / "chairside" / "data"


def _limits():
    return tomllib.loads((DATA / "limits" / "standard.toml").read_text())




@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def svc(clock, tmp_path):
    s = MonitorService(clock=clock, session_dir=tmp_path, protocol="iv-ketamine-depression")
    yield s
    s.shutdown()


ONE_BP = "one baseline BP: the second is waived for this test"


def opened(svc, clock, tmp_path, *, weight=70.0):
    path = svc.open_session(patient_id="P-001", weight_kg=weight, staff=["AB"], weight_confirmed_by="CD",
                            path=tmp_path / "s.chairside")
    svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                           hours_fasted=6, escort_confirmed=True, consent=True, medications_reviewed=True,
                           allergies="none known")
    return path


def events_on_disk(path):
    return read_session(path).events


def test_readings_are_stored_before_they_are_published(svc, clock, tmp_path):
    opened(svc, clock, tmp_path)
    order = []
    real = svc.store.append_readings

    def spy(readings):
        order.append(("stored", len(readings)))
        return real(readings)
    svc.store.append_readings = spy
    svc.subscribe(lambda snap: order.append(("published", snap.last_reading_seq)))
    svc.feed(cont(clock))
    assert order[0] == ("stored", 3)
    assert order[1][0] == "published"


def test_clinical_event_is_durable_when_the_command_returns(svc, clock, tmp_path):
    path = opened(svc, clock, tmp_path)
    note = svc.add_note(author="AB", text="patient comfortable")
    on_disk = events_on_disk(path)  # a second connection sees it: committed
    assert any(e.kind == "note" and e.seq == note.seq and e.text == "patient comfortable" for e in on_disk)


def test_gate_blocks_a_start_at_185_112_until_overridden(svc, clock, tmp_path):
    path = opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 185, 112) + cont(clock))
    with pytest.raises(GateBlocked) as exc:
        svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    assert exc.value.reasons
    assert svc.snapshot().infusion.state == "not_started"
    ev = svc.start_infusion(author="AB", concentration_mg_ml=0.35, gate_override_reason="prescriber Dr X ok")
    assert ev.gate_override_reason == "prescriber Dr X ok"
    assert any(e.kind == "infusion_started" and e.gate_override_reason for e in events_on_disk(path))


def test_gate_blocking_limits_come_from_the_limits_file(svc, clock, tmp_path):
    # the lowest systolic limit that blocks the start, from the data file: just below passes the block
    gate = [g for g in _limits()["gate"] if g["param"] == "sbp" and g.get("blocks_start")]
    limit = min(g["limit"] for g in gate)
    opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, limit - 1, 80) + cont(clock))
    assert svc.gate_check()[0] is False
    svc.feed(nibp(clock, limit, 80) + cont(clock))
    assert svc.gate_check()[0] is True


def test_start_uses_the_dose_arithmetic_of_the_clinical_doc(svc, clock, tmp_path):
    # (b) A: 70 kg, 0.5 mg/kg over 40 min, 0.35 mg/mL -> 0.75 mg/kg/h, 150 mL/h
    opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    ev = svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    assert ev.rate_mg_kg_h == pytest.approx(0.75)
    assert ev.rate_ml_h == pytest.approx(150.0)
    clock.advance(40 * 60)
    snap = svc.snapshot()
    assert snap.infusion.delivered_mg == pytest.approx(35.0)
    assert snap.infusion.delivered_mg_kg == pytest.approx(0.5)
    assert snap.session.phase == "infusion"


def test_rate_change_pause_resume_stop_and_totals(svc, clock, tmp_path):
    path = opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    clock.advance(600)  # 10 min at 0.75 mg/kg/h x 70 kg = 8.75 mg
    svc.change_rate(author="AB", rate_mg_kg_h=0.5, reason="BP rising")
    clock.advance(600)  # 10 min at 0.5 x 70 = 5.833 mg
    svc.pause_infusion(author="AB", reason="BP 182/100")
    clock.advance(300)  # paused: nothing
    with pytest.raises(CommandRefused, match="no BP has been measured since the pause"):
        svc.resume_infusion(author="AB")
    svc.feed(nibp(clock, 128, 80))  # the BP after the pause is below every gate tier
    svc.resume_infusion(author="AB")
    clock.advance(120)  # 2 min at 0.5 x 70 = 1.1667 mg
    svc.stop_infusion(author="AB", reason="dose complete")
    snap = svc.snapshot()
    assert snap.infusion.state == "stopped"
    assert snap.infusion.delivered_mg == pytest.approx(8.75 + 35 / 6 + 70 * 0.5 / 30, rel=1e-6)
    assert snap.session.phase == "recovery"
    kinds = [e.kind for e in events_on_disk(path)]
    for k in ("infusion_started", "infusion_rate_changed", "infusion_paused", "infusion_resumed", "infusion_stopped"):
        assert k in kinds
    with pytest.raises(CommandRefused):
        svc.pause_infusion(author="AB", reason="x")


def test_rate_change_needs_a_reason(svc, clock, tmp_path):
    opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    with pytest.raises(CommandRefused):
        svc.change_rate(author="AB", rate_mg_kg_h=0.5, reason="  ")


def test_observation_validated_against_its_scale(svc, clock, tmp_path):
    opened(svc, clock, tmp_path)
    top = get_scale("moaas").max
    with pytest.raises(CommandRefused):
        svc.record_observation(author="AB", scale="moaas", score=top + 1)
    ev = svc.record_observation(author="AB", scale="moaas", score=top)
    assert ev.score == top


def test_amendment_points_at_the_original(svc, clock, tmp_path):
    path = opened(svc, clock, tmp_path)
    note = svc.add_note(author="AB", text="ondansetron 4mg")
    am = svc.amend(author="AB", target_seq=note.seq, reason="wrong drug name", replacement={"text": "ondansetron 4 mg IV"})
    assert am.target_seq == note.seq
    evs = events_on_disk(path)
    assert any(e.kind == "note" and e.text == "ondansetron 4mg" for e in evs)  # the original stays
    with pytest.raises(CommandRefused):
        svc.amend(author="AB", target_seq=note.seq, reason="")


def test_high_bp_alarm_acknowledged_is_recorded(svc, clock, tmp_path):
    path = opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    clock.advance(600)
    svc.feed(nibp(clock, 205, 100))
    snap = svc.snapshot()
    assert snap.alarms and snap.alarms[0].priority == "high"
    assert snap.tile("nibp").alarm == "high"
    assert snap.audio_priority == "high"
    svc.acknowledge(None, by="AB")
    kinds = [e.kind for e in events_on_disk(path)]
    assert "alarm_raised" in kinds and "alarm_acknowledged" in kinds
    assert svc.snapshot().audio_priority is None


def test_audio_pause_with_nothing_sounding_keeps_recording_to_the_file(svc, clock, tmp_path):
    # Found at the chair: "s" after every alarm was acknowledged (or before any alarm) made
    # the file refuse the engine's event and the whole session fell back to memory.
    path = opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.pause_audio(by="AB")
    assert svc.snapshot().device.store.state == "ok"
    note = svc.add_note(author="AB", text="after the audio pause")
    assert svc.snapshot().device.store.state == "ok"
    assert not any("IN MEMORY" in n for n in svc.snapshot().notices)
    on_disk = events_on_disk(path)
    assert any(e.kind == "note" and e.seq == note.seq and e.text == "after the audio pause" for e in on_disk)
    assert verify(path).ok


def test_an_alarm_seen_before_the_session_is_opened_carries_into_the_record(svc, clock, tmp_path):
    # Found at the chair: 205/125 at check-in raised *** on screen; opening the session
    # started a fresh engine and the alarm bar went blank until the next NIBP.
    high_sbp = min(t["limit"] for lad in _limits()["ladder"] if lad["name"] == "sbp_high"
                   for t in lad["tiers"] if t["priority"] == "high" and "pre_infusion" in t["phases"])
    svc.feed(nibp(clock, high_sbp + 25, 80) + cont(clock))
    assert any(a.param == "nibp_sys" and a.priority == "high" for a in svc.snapshot().alarms)
    clock.advance(30)
    path = opened(svc, clock, tmp_path)
    assert any(a.param == "nibp_sys" and a.priority == "high" for a in svc.snapshot().alarms)
    on_disk = events_on_disk(path)
    raised = [e for e in on_disk if e.kind == "alarm_raised" and e.param == "nibp_sys"]
    assert raised and raised[0].value == high_sbp + 25
    stored = [r for e in on_disk if e.kind == "readings_recorded" for r in e.readings if r.param == "nibp_sys"]
    assert [r.value for r in stored] == [high_sbp + 25]  # the value the alarm is about is in the file
    assert verify(path).ok


def test_probe_off_is_missing_with_a_reason_not_a_zero(svc, clock):
    svc.feed(cont(clock))
    t = clock.now()
    svc.feed([Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",), receive_time=t,
                      source="spo2"),
              DeviceStatus(kind="probe_off", param="spo2", receive_time=t)])
    tile = svc.snapshot().tile("spo2")
    assert tile.value is None
    assert tile.missing_reason == "probe off"


def test_nibp_goes_stale_after_twice_its_cadence(svc, clock, tmp_path):
    opened(svc, clock, tmp_path)
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    cadence = load_template("iv-ketamine-depression").bp_cadence["infusion"].every_min * 60
    factor = tomllib.loads((DATA / "console.toml").read_text())["staleness"]["factor"]
    clock.advance(cadence * factor - 5)
    assert svc.snapshot().tile("nibp").stale is False
    clock.advance(10)
    tile = svc.snapshot().tile("nibp")
    assert tile.stale is True and tile.value == 128  # still shown, dimmed
    assert svc.snapshot().next_bp_due_s < 0


def test_link_loss_keeps_monitoring_and_says_so(svc, clock, tmp_path):
    opened(svc, clock, tmp_path)
    svc.feed(cont(clock))
    svc.feed([DeviceStatus(kind="link_lost", detail="EOF", flags=("transport",), receive_time=clock.now())])
    snap = svc.snapshot()
    assert any("LINK LOST" in n for n in snap.notices)
    svc.feed([DeviceStatus(kind="link_lost", active=False, flags=("transport",), receive_time=clock.now()),
              DeviceStatus(kind="link_up", flags=("transport",), receive_time=clock.now())])
    svc.feed(cont(clock, hr=80))
    snap = svc.snapshot()
    assert not any("LINK LOST" in n for n in snap.notices)
    assert snap.tile("hr").value == 80


class _FullDisk(sqlite3.Connection):
    """Writes fail as SQLite fails on a full disk while ``full`` is set (the store's seam)."""

    full = False

    def execute(self, sql, *args):  # type: ignore[override]
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "COMMIT")):
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)

    def executemany(self, sql, *args):  # type: ignore[override]
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "COMMIT")):
            raise sqlite3.OperationalError("database or disk is full")
        return super().executemany(sql, *args)


def test_disk_failure_degrades_to_memory_loudly_and_keeps_going(svc, clock, tmp_path, monkeypatch):
    # The session file owns the only degrade-to-memory path: the service shows what it says.
    create = SessionFile.create.__func__
    monkeypatch.setattr(SessionFile, "create", classmethod(
        lambda cls, *a, **k: create(cls, *a, connection_factory=_FullDisk, **k)))
    opened(svc, clock, tmp_path)
    monkeypatch.setattr(_FullDisk, "full", True)
    note = svc.add_note(author="AB", text="after the disk filled")
    assert note.seq > 0
    clock.advance(2)
    svc.feed(cont(clock, hr=90))
    svc.tick()
    snap = svc.snapshot()
    assert snap.device.store.state == "memory"
    assert any("IN MEMORY" in n and "disk is full" in n for n in snap.notices)
    assert snap.tile("hr").value == 90
    assert any(e.kind == "note" and e.seq == note.seq for e in svc.store.events())  # held, not lost


def test_discharge_blocked_then_allowed(svc, clock, tmp_path):
    path = opened(svc, clock, tmp_path)
    tpl = load_template("iv-ketamine-depression")
    svc.feed(nibp(clock, 130, 80) + cont(clock))
    svc.record_baseline(author="AB")
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    clock.advance(40 * 60)
    svc.stop_infusion(author="AB", reason="complete")
    al = {i.key: i.max for i in get_scale("aldrete").items}
    with pytest.raises(DischargeBlocked) as exc:
        svc.assess_discharge(author="AB", aldrete=al, escort_present=True, instructions_given=True)
    assert any("minimum recovery" in r for r in exc.value.reasons)
    clock.advance(tpl.recovery.min_minutes * 60 + 1)
    svc.record_observation(author="AB", scale="moaas", score=tpl.discharge.moaas_required)
    svc.record_observation(author="AB", scale="cadss", score=tpl.discharge.cadss_max)
    svc.feed(nibp(clock, 132, 82) + cont(clock, hr=75))
    chk = svc.discharge_check(aldrete=al, escort_present=True, instructions_given=True)
    assert chk.blocked_reasons == ()
    ev = svc.assess_discharge(author="AB", aldrete=al, escort_present=True, instructions_given=True)
    assert ev.discharged and ev.criteria_met
    assert svc.snapshot().session.phase == "discharged"
    svc.close_session(author="AB")
    assert verify(path).ok


def test_discharge_vitals_outside_baseline_by_the_templates_percent(svc, clock, tmp_path):
    opened(svc, clock, tmp_path)
    pct = load_template("iv-ketamine-depression").discharge.vitals_within_pct
    svc.feed(nibp(clock, 100, 70) + cont(clock, hr=70))
    svc.record_baseline(author="AB")
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    clock.advance(60)
    svc.stop_infusion(author="AB", reason="x")
    clock.advance(3600)
    svc.feed(nibp(clock, 100 * (1 + pct / 100) + 1, 70) + cont(clock, hr=70))
    assert svc.discharge_check().vitals_within is False
    svc.feed(nibp(clock, 100 * (1 + pct / 100) - 1, 70) + cont(clock, hr=70))
    assert svc.discharge_check().vitals_within is True
    with pytest.raises(DischargeBlocked, match="prescriber's initials"):
        svc.assess_discharge(author="AB", override_reason="prescriber reviewed")
    ev = svc.assess_discharge(author="AB", override_reason="prescriber reviewed", override_by="MD")
    assert ev.discharged and ev.override_reason == "prescriber reviewed" and ev.override_by == "MD"


def test_resume_rebuilds_the_session(clock, tmp_path):
    s1 = MonitorService(clock=clock, session_dir=tmp_path)
    path = opened(s1, clock, tmp_path)
    s1.feed(nibp(clock, 128, 80) + cont(clock))
    s1.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason=ONE_BP)
    clock.advance(300)
    s1.shutdown()
    s2 = MonitorService(clock=clock, session_dir=tmp_path)
    s2.resume_session(path)
    snap = s2.snapshot()
    assert snap.session.open and snap.infusion.state == "running"
    assert snap.infusion.delivered_mg == pytest.approx(0.75 * 70 * 300 / 3600)
    s2.add_note(author="AB", text="resumed")
    s2.shutdown()
    assert verify(path).ok
