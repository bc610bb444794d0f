"""Pilot tests of the console's flows: a real MonitorService (no serial link: readings are
fed as the link would), a frozen ManualClock, the app built by ``create_app``."""

from __future__ import annotations

import pytest

from readings_kit import cont, nibp
from pilot_kit import set_field, settle, submit
from chairside.domain.clock import ManualClock
from chairside.domain.protocol import load_template
from chairside.domain.scales import get_scale
from chairside.service import MonitorService
from chairside.store import read_session
from chairside.ui import create_app




class Rig:
    def __init__(self, tmp_path):
        self.clock = ManualClock()
        self.path = tmp_path / "s.chairside"
        self.svc = MonitorService(clock=self.clock, session_dir=tmp_path)

    def open(self):
        self.svc.open_session(patient_id="P-001", weight_kg=70, staff=["AB"], weight_confirmed_by="CD",
                              path=self.path)
        self.svc.complete_checklist(author="AB", contraindications={i.key: False for i in self.svc.data.checklist},
                                    hours_fasted=6, escort_confirmed=True, consent=True,
                                    medications_reviewed=True, allergies="none known")

    def app(self, **kw):
        kw.setdefault("show_start", False)
        kw.setdefault("flash", False)
        kw.setdefault("bell", False)
        return create_app(self.svc, self.clock, None, **kw)

    def events(self):
        return read_session(self.path).events


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.svc.shutdown()




async def test_new_session_with_checklist(rig):
    app = rig.app(show_start=True, start_defaults={"path": str(rig.path)})
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert type(screen).__name__ == "StartScreen"
        await pilot.press(*"P-123")  # focus starts on the patient ID
        await pilot.press("tab", *"72.5")
        set_field(screen, "staff", "AB, CD")
        set_field(screen, "weight_confirmed_by", "CD")
        set_field(screen, "ci_history_of_psychosis", True)
        set_field(screen, "hours_fasted", "5")
        set_field(screen, "escort", True)
        set_field(screen, "consent", True)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert type(app.screen).__name__ == "StartScreen"  # the "asked" box is required
        assert "asked" in str(screen.query_one("#dialog-error").content)
        set_field(screen, "asked", True)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert type(app.screen).__name__ == "MonitorScreen"
        assert app.snapshot.session.open and app.snapshot.session.patient_id == "P-123"
    evs = rig.events()
    opened = evs[0]
    assert opened.kind == "session_opened" and opened.weight_kg == 72.5 and opened.staff == ("AB", "CD")
    chk = next(e for e in evs if e.kind == "checklist_completed")
    assert chk.contraindications["history_of_psychosis"] is True
    assert sum(chk.contraindications.values()) == 1
    assert len(chk.contraindications) == len(rig.svc.data.checklist)
    assert chk.hours_fasted == 5 and chk.escort_confirmed and chk.consent


async def test_gate_blocks_a_start_at_185_112(rig):
    rig.open()
    rig.svc.feed(nibp(rig.clock, 185, 112) + cont(rig.clock))
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("i")
        await pilot.pause()
        dlg = app.screen
        assert "BLOCKS START" in str(dlg.query_one("#dialog-intro").content)
        set_field(dlg, "concentration", "0.35")
        await submit(pilot)
        assert app.screen is dlg  # still open: refused
        assert "BLOCKED" in str(dlg.query_one("#dialog-error").content)
        assert not dlg.query_one("#row-gate_override_reason").has_class("-hidden")
        assert app.snapshot.infusion.state == "not_started"
        set_field(dlg, "gate_override_reason", "Dr Who: repeat 178/104, proceed")
        await submit(pilot)
        assert app.screen is not dlg
        assert app.snapshot.infusion.state == "running"
    started = next(e for e in rig.events() if e.kind == "infusion_started")
    assert started.gate_override_reason == "Dr Who: repeat 178/104, proceed"


async def test_start_change_pause_stop(rig):
    rig.open()
    rig.svc.feed(nibp(rig.clock, 128, 80) + cont(rig.clock))
    gap = load_template("iv-ketamine-depression").gate.baseline_interval_min
    rig.clock.advance(gap * 60)  # the template's second baseline BP, 5 min after the first
    rig.svc.feed(nibp(rig.clock, 126, 78) + cont(rig.clock))
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("i")
        await pilot.pause()
        set_field(app.screen, "concentration", "0.35")
        set_field(app.screen, "lot", "K123")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "150.0 mL/h" in str(app.screen.query_one("#dialog-summary").content)  # (b) A example
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.snapshot.infusion.state == "running"
        rig.clock.advance(300)
        await pilot.press("r")
        await pilot.pause()
        set_field(app.screen, "rate", "0.5")
        set_field(app.screen, "reason", "BP rising")
        await submit(pilot)
        assert app.snapshot.infusion.rate_mg_kg_h == pytest.approx(0.5)
        await pilot.press("p")
        await pilot.pause()
        set_field(app.screen, "reason", "BP 182/104")
        await submit(pilot)
        assert app.snapshot.infusion.state == "paused"
        await pilot.press("x")
        await pilot.pause()
        set_field(app.screen, "reason", "stopped for BP")
        await submit(pilot)
        assert app.snapshot.infusion.state == "stopped"
        assert app.snapshot.session.phase == "recovery"
    kinds = [e.kind for e in rig.events()]
    assert kinds.count("infusion_started") == 1 and "infusion_rate_changed" in kinds
    assert "infusion_paused" in kinds and "infusion_stopped" in kinds
    change = next(e for e in rig.events() if e.kind == "infusion_rate_changed")
    assert change.rate_ml_h == pytest.approx(0.5 * 70 / 0.35) and change.reason == "BP rising"


OBS_KEYS = [("1", "cadss"), ("2", "moaas"), ("3", "rass"), ("4", "nausea"), ("5", "anxiety"),
            ("6", "htn_symptoms"), ("7", "other")]


@pytest.mark.parametrize("key,form", OBS_KEYS)
async def test_each_observation_form(rig, key, form):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press(key)
        await pilot.pause()
        dlg = app.screen
        assert type(dlg).__name__ == "ObservationDialog" and dlg.form == form
        if form in ("moaas", "rass"):
            sc = get_scale(form)
            expect = sc.max  # the top of the scale, from the data
            set_field(dlg, "score", int(expect))
        elif form == "htn_symptoms":
            first = get_scale(form).items[0].key
            set_field(dlg, f"item_{first}", True)
            expect = 1
        elif form == "other":
            set_field(dlg, "what", "headache")
            set_field(dlg, "text", "mild frontal headache")
            expect = None
        elif form == "nausea":
            set_field(dlg, "score", "3")
            set_field(dlg, "vomiting", "1")
            expect = 3
        else:
            set_field(dlg, "score", "4")
            expect = 4
        await submit(pilot, confirm=False)
        assert app.screen is not dlg, dlg.query_one("#dialog-error").content
    obs = [e for e in rig.events() if e.kind == "observation_recorded"]
    assert obs[0].scale == form and obs[0].score == expect
    if form == "nausea":
        assert obs[1].scale == "vomiting" and obs[1].score == 1
    if form == "other":
        assert "headache" in obs[0].text


async def test_observation_out_of_range_is_refused_in_the_dialog(rig):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("5")
        await pilot.pause()
        set_field(app.screen, "score", str(int(get_scale("anxiety").max) + 1))
        await submit(pilot, confirm=False)
        assert "Refused" in str(app.screen.query_one("#dialog-error").content)
    assert not [e for e in rig.events() if e.kind == "observation_recorded"]


async def test_intervention(rig):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("m")
        await pilot.pause()
        dlg = app.screen
        set_field(dlg, "what", "labetalol")
        set_field(dlg, "dose", "10")
        set_field(dlg, "unit", "mg")
        set_field(dlg, "route", "IV")
        set_field(dlg, "lot", "LB-77")
        set_field(dlg, "ordered_by", "DR")
        await submit(pilot, confirm=False)
        assert app.screen is not dlg
    iv = next(e for e in rig.events() if e.kind == "intervention_given")
    assert (iv.dose, iv.dose_unit, iv.route, iv.lot, iv.ordered_by) == (10, "mg", "IV", "LB-77", "DR")
    assert iv.drug.startswith("Labetalol")


async def test_amendment(rig):
    rig.open()
    note = rig.svc.add_note(author="AB", text="gave 4mg ondansetorn")
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        dlg = app.screen
        set_field(dlg, "target", note.seq)
        set_field(dlg, "field", "text")
        set_field(dlg, "value", "gave 4 mg ondansetron")
        set_field(dlg, "reason", "spelling")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "the original stays" in str(dlg.query_one("#dialog-summary").content)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is not dlg
    evs = rig.events()
    am = next(e for e in evs if e.kind == "amendment")
    assert am.target_seq == note.seq and am.replacement == {"text": "gave 4 mg ondansetron"}
    assert any(e.kind == "note" and e.text == "gave 4mg ondansetorn" for e in evs)
    # the timeline shows both: the original as written, and the amendment with the correction
    texts = [it.text for it in rig.svc.snapshot().timeline]
    assert any("gave 4mg ondansetorn" in t for t in texts)
    assert any(t.startswith(f"Amendment of #{note.seq}") and "gave 4 mg ondansetron" in t for t in texts)


async def test_alarm_acknowledge(rig):
    rig.open()
    rig.svc.feed(nibp(rig.clock, 128, 80) + cont(rig.clock))
    rig.svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        rig.clock.advance(600)
        rig.svc.feed(nibp(rig.clock, 210, 118))
        await pilot.pause()
        await pilot.pause()
        bar = app.monitor.query_one("AlarmBar")
        assert bar.alarms and bar.alarms[0].priority == "high"
        assert "***" in str(bar.content)
        await pilot.press("a")
        await settle(pilot)
        assert all(a.acknowledged for a in app.snapshot.alarms)
        assert "ACK" in str(bar.content)
    kinds = [e.kind for e in rig.events()]
    assert "alarm_raised" in kinds and "alarm_acknowledged" in kinds


async def test_discharge_blocked_then_allowed(rig):
    rig.open()
    rig.svc.feed(nibp(rig.clock, 130, 80) + cont(rig.clock))
    rig.svc.record_baseline(author="AB")
    rig.svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    rig.clock.advance(40 * 60)
    rig.svc.stop_infusion(author="AB", reason="complete")
    app = rig.app()
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("d")
        await pilot.pause()
        dlg = app.screen
        for it in get_scale("aldrete").items:
            set_field(dlg, f"aldrete_{it.key}", it.max)
        set_field(dlg, "escort", True)
        set_field(dlg, "instructions", True)
        await pilot.pause()
        assert "minimum recovery" in str(dlg.query_one("#dialog-summary").content)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dlg
        assert "BLOCKED" in str(dlg.query_one("#dialog-error").content)
        await pilot.press("escape")
        await pilot.pause()
        rig.clock.advance(load_template("iv-ketamine-depression").recovery.min_minutes * 60 + 60)
        rig.svc.feed(nibp(rig.clock, 126, 78) + cont(rig.clock))
        d = load_template("iv-ketamine-depression").discharge  # awake and not dissociated, after the infusion
        rig.svc.record_observation(author="AB", scale="moaas", score=d.moaas_required)
        rig.svc.record_observation(author="AB", scale="cadss", score=d.cadss_max)
        await pilot.press("d")
        await pilot.pause()
        dlg = app.screen
        for it in get_scale("aldrete").items:
            set_field(dlg, f"aldrete_{it.key}", it.max)
        set_field(dlg, "escort", True)
        set_field(dlg, "instructions", True)
        await pilot.pause()
        assert "All discharge criteria met" in str(dlg.query_one("#dialog-summary").content)
        await submit(pilot)
        assert app.screen is not dlg
        assert app.snapshot.session.phase == "discharged"
    d = next(e for e in rig.events() if e.kind == "discharge_assessed")
    assert d.discharged and d.criteria_met and d.override_reason == ""


async def test_help_and_palette_entries(rig):
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for needed in ("Ack alarms", "Start", "Discharge", "CADSS", "Intervention", "Amend", "Note"):
            assert needed in titles


async def test_palette_opens_an_action(rig):
    rig.open()
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Note")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "NoteDialog"
        dlg = app.screen
        await pilot.press(*"patient asleep")
        await submit(pilot, confirm=False)
        assert app.screen is not dlg, (dlg.query_one("#f-text").value, str(dlg.query_one("#dialog-error").content))
    assert any(e.kind == "note" and e.text == "patient asleep" for e in rig.events())


async def test_typing_goes_where_the_nurse_types_not_into_the_initials(rig):
    # Found at the chair: every form opened with the cursor in the prefilled "Your initials",
    # so a typed rate replaced the initials. Keys only here, no set_field.
    rig.open()
    rig.svc.feed(nibp(rig.clock, 128, 80) + cont(rig.clock))
    rig.svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        await pilot.pause()
        dlg = app.screen
        await pilot.press(*"0.5", "tab", *"BP rising")
        await submit(pilot)
        assert app.screen is not dlg, str(dlg.query_one("#dialog-error").content)
        await pilot.press("p")
        await pilot.pause()
        await pilot.pause()
        await pilot.press(*"nausea")
        await submit(pilot)
        assert app.snapshot.infusion.state == "paused"
    change = next(e for e in rig.events() if e.kind == "infusion_rate_changed")
    assert change.author == "AB" and change.rate_mg_kg_h == pytest.approx(0.5) and change.reason == "BP rising"
    paused = next(e for e in rig.events() if e.kind == "infusion_paused")
    assert paused.author == "AB" and paused.reason == "nausea"


async def test_amend_offers_only_the_fields_of_the_chosen_entry(rig):
    rig.open()
    note = rig.svc.add_note(author="AB", text="pt resting")
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        dlg = app.screen
        assert dlg.focused is dlg.query_one("#f-target")  # not the prefilled initials
        set_field(dlg, "target", note.seq)
        await pilot.pause()
        await pilot.pause()
        field = dlg.query_one("#f-field")
        assert field.value == "text"  # a note has one field to correct: chosen for the nurse
        offered = [v for _label, v in field._options if isinstance(v, str)]
        assert offered == ["text"]  # not the 26 fields of every kind of entry


async def test_flash_rates_and_bell_bursts_follow_the_console_data_file(rig):
    """High flashes at high_hz, medium at medium_hz (app timer, not terminal blink); the bell
    rings a burst of high_pulses on a new high alarm and again after high_repeat_s."""
    import tomllib
    from pathlib import Path

    doc = tomllib.loads((Path(__file__).resolve().parents[2] / "src/chairside/data/console.toml").read_text())
    rig.open()
    rig.svc.feed(nibp(rig.clock, 128, 80) + cont(rig.clock))
    rig.svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    rig.clock.advance(600)
    rig.svc.feed(nibp(rig.clock, 210, 118))  # >= 200/120 while infusing: high
    assert rig.svc.snapshot().audio_priority == "high"
    app = rig.app(flash=True, bell=True)
    rung = []
    async with app.run_test(size=(100, 40)) as pilot:
        app.bell = lambda: rung.append(rig.clock.monotonic())  # count terminal bells
        app._last_bell_priority = None
        app._last_bell_mono = None
        bar = app.monitor.query_one("AlarmBar")
        phases = []
        for _ in range(40):  # drive the app's timer by hand, one tick at a time
            app._on_timer()
            phases.append((bar._high_on, bar._medium_on))

        def half_period_s(seq):
            runs, n = [], 1
            for a, b in zip(seq, seq[1:]):
                if a == b:
                    n += 1
                else:
                    runs.append(n)
                    n = 1
            inner = runs[1:]  # the first run may be cut
            assert inner and len(set(inner)) == 1, runs
            return inner[0] * app._timer_s

        assert half_period_s([h for h, _ in phases]) == pytest.approx(1 / (2 * doc["flash"]["high_hz"]))
        assert half_period_s([m for _, m in phases]) == pytest.approx(1 / (2 * doc["flash"]["medium_hz"]))
        await pilot.pause(doc["bell"]["high_pulses"] * doc["bell"]["pulse_gap_s"] + 0.3)
        assert len(rung) == doc["bell"]["high_pulses"]  # one burst so far
        rig.clock.advance(doc["bell"]["high_repeat_s"] - 1)
        app._on_timer()
        await pilot.pause(0.1)
        assert len(rung) == doc["bell"]["high_pulses"]  # not yet due
        rig.clock.advance(1)
        app._on_timer()
        await pilot.pause(doc["bell"]["high_pulses"] * doc["bell"]["pulse_gap_s"] + 0.3)
        assert len(rung) == 2 * doc["bell"]["high_pulses"]


async def test_start_screen_resumes_an_open_session_file(tmp_path):
    first = Rig(tmp_path)
    first.open()
    first.svc.add_note(author="AB", text="before the restart")
    first.svc.shutdown()  # the console was closed with the session still open
    again = Rig(tmp_path)
    try:
        app = again.app(show_start=True)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert type(screen).__name__ == "StartScreen"
            set_field(screen, "resume_path", str(first.path))
            await pilot.press("f3")
            await settle(pilot)
            assert type(app.screen).__name__ == "MonitorScreen"
            snap = app.snapshot
            assert snap.session.open and snap.session.patient_id == "P-001"
            assert any("before the restart" in it.text for it in snap.timeline)
            await pilot.press("n")
            await pilot.pause()
            await pilot.press(*"after the restart")
            await submit(pilot, confirm=False)
        texts = [e.text for e in first.events() if e.kind == "note"]
        assert texts == ["before the restart", "after the restart"]
    finally:
        again.svc.shutdown()


async def test_manual_vitals_are_stored_shown_and_count_as_the_bp_check(rig):
    """A BP taken by hand (a Masimo-only chair, a failed cuff): readings with origin
    "manual" in the record, the NIBP tile shows them, and a note says who took them."""
    rig.open()
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("v")
        await pilot.pause()
        dlg = app.screen
        assert type(dlg).__name__ == "ManualVitalsDialog"
        set_field(dlg, "sbp", "90")
        set_field(dlg, "dbp", "120")  # the wrong way round: refused in the dialog
        await submit(pilot)
        assert app.screen is dlg and "above diastolic" in str(dlg.query_one("#dialog-error").content)
        set_field(dlg, "sbp", "150")
        set_field(dlg, "dbp", "90")
        set_field(dlg, "hr", "88")
        set_field(dlg, "how", "manual cuff, left arm")
        await submit(pilot)
        assert app.screen is not dlg
        tile = app.snapshot.tile("nibp")
        assert (tile.value, tile.value2) == (150, 90) and tile.source == "manual"
    evs = rig.events()
    readings = [r for e in evs if e.kind == "readings_recorded" for r in e.readings]
    manual = {r.param: r for r in readings if r.origin == "manual"}
    assert manual["nibp_sys"].value == 150 and manual["nibp_dia"].value == 90 and manual["pr"].value == 88
    assert manual["nibp_map"].value == round(90 + (150 - 90) / 3)
    note = next(e for e in evs if e.kind == "note" and "manual vitals" in e.text)
    assert note.author == "AB" and "150/90" in note.text and "left arm" in note.text


def test_manual_vitals_refuse_impossible_values(rig):
    from chairside.service.model import CommandRefused

    rig.open()
    for kw, what in (({"sbp": 90, "dbp": 120}, "above diastolic"), ({"sbp": 120}, "both"),
                     ({"spo2": 104}, "above 100"), ({}, "at least one"), ({"hr": -5}, "> 0")):
        with pytest.raises(CommandRefused, match=what):
            rig.svc.record_manual_vitals(author="AB", **kw)
    assert not any(r.origin == "manual" for e in rig.events() if e.kind == "readings_recorded" for r in e.readings)


async def test_start_screen_opens_a_replay_with_f4(tmp_path):
    """F4 on the start screen hands the file to the console's replay hook (``chairside``
    leaves the live monitor for the replay); a path that is not a file is refused there."""
    asked: list[str] = []
    rig = Rig(tmp_path)
    try:
        app = rig.app(show_start=True, replay_hook=asked.append)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            set_field(screen, "resume_path", str(tmp_path / "nope.chairside"))
            await pilot.press("f4")
            await pilot.pause()
            assert asked == [] and "no such file" in str(screen.query_one("#dialog-error").content)
            target = tmp_path / "old.chairside"
            target.write_bytes(b"x")
            set_field(screen, "resume_path", str(target))
            await pilot.press("f4")
            await pilot.pause()
            assert asked == [str(target)]
    finally:
        rig.svc.shutdown()
