"""At 80x24 nothing is cut mid-word (issue 17, "The command line").

The console is drawn at 80x24 in the states a nurse meets (no session, the new-session form,
an infusion with a medium and a latched high alarm, the link lost with tiles saying why,
probe off, stale NIBP, the discharge form) and every row of the screen text is scanned:
- the fragments the issue found ("readings are shown, not", "lim 50–1…", "no data from
  the m") and any other cut of a phrase the console writes (a row that ends with the start
  of the phrase but not the whole of it);
- an ellipsis right after a letter or digit (a word cut to make room for "…").
"""

from __future__ import annotations

import re

import pytest

from pilot_kit import settle
from readings_kit import cont, nibp
from chairside.domain.clock import ManualClock
from chairside.domain.readings import DeviceStatus, Reading
from chairside.service import MonitorService
from chairside.ui import create_app

# phrases the console writes whole; a row may not end with a cut-off start of one of them
PHRASES = [
    "readings are shown, not recorded",
    "no data from the monitor",
    "no measurement yet",
    "NOT RECORDING (no session)",
    "every contraindication above was asked and answered",
    "Discharge instructions given (no driving until tomorrow)",
    "Activity and mental status",
    "Pain and/or nausea/vomiting",
]
BORDER = "│┃╮╯╰╭┓┛┗┏━─ █▌▐▀▄"


def screen_rows(app) -> list[str]:
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    rows = []
    for line in update.strips:
        rows.append("".join(seg.text for strip in line for seg in strip if not seg.control))
    return rows


def cuts(rows: list[str]) -> list[str]:
    found = []
    for y, row in enumerate(rows):
        if re.search(r"[A-Za-z0-9]…", row):
            found.append(f"row {y}: a word cut before '…': {row.strip()!r}")
        # each bordered cell of the row, read up to its border
        for cell in re.split(r"[│┃█▌▐]", row):
            cell = cell.rstrip(BORDER + " ")
            for phrase in PHRASES:
                for k in range(8, len(phrase)):
                    if cell.endswith(phrase[:k]) and phrase[k] != " " and not cell.endswith(phrase):
                        found.append(f"row {y}: {phrase!r} cut to {phrase[:k]!r}: {row.strip()!r}")
                        break
    for bad in ("readings are shown, not\n", "lim 50–1…", "no data from the m\n"):
        if bad.strip() in "\n".join(r.rstrip(BORDER + " ") for r in rows) and bad.endswith("\n"):
            for r in rows:
                if r.rstrip(BORDER + " ").endswith(bad.strip()):
                    found.append(f"issue fragment {bad.strip()!r}: {r.strip()!r}")
        elif bad in "\n".join(rows):
            found.append(f"issue fragment {bad!r}")
    return found


def new_service(tmp_path, *, session=True):
    clock = ManualClock()
    svc = MonitorService(clock=clock, session_dir=tmp_path)
    if session:
        svc.open_session(patient_id="P-0001-LONG-NAME", weight_kg=72.5, staff=["AB"], weight_confirmed_by="CD",
                         path=tmp_path / "s.chairside")
        svc.complete_checklist(author="AB", contraindications={i.key: False for i in svc.data.checklist},
                               hours_fasted=6, escort_confirmed=True, consent=True, medications_reviewed=True,
                           allergies="none known")
    svc.feed(nibp(clock, 128, 80) + cont(clock))
    return svc, clock


def minutes(svc, clock, n, **kw):
    for i in range(int(n * 12)):
        clock.advance(5)
        svc.feed(cont(clock, **kw))
        svc.tick()


def st_no_session(tmp_path):
    svc, clock = new_service(tmp_path, session=False)
    minutes(svc, clock, 1)
    return svc, clock, {}, ()


def st_start_form(tmp_path):
    svc, clock = new_service(tmp_path, session=False)
    minutes(svc, clock, 1)
    return svc, clock, {"show_start": True}, ()


def st_alarms(tmp_path):
    svc, clock = new_service(tmp_path)
    svc.record_baseline(author="AB")
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, lot="K-2231", advisory_reason="one baseline BP in this test")
    minutes(svc, clock, 5)
    svc.feed(nibp(clock, 208, 104))  # high, latches
    minutes(svc, clock, 2)
    svc.feed(nibp(clock, 184, 96))  # medium
    minutes(svc, clock, 1, hr=45, spo2=91)
    return svc, clock, {}, ()


def st_link_lost(tmp_path):
    svc, clock = new_service(tmp_path)
    svc.record_baseline(author="AB")
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    minutes(svc, clock, 2)
    svc.feed([DeviceStatus(kind="link_lost", receive_time=clock.now())])
    for _ in range(30):
        clock.advance(5)
        svc.tick()
    return svc, clock, {}, ()


def st_probe_off_stale(tmp_path):
    svc, clock = new_service(tmp_path)
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    t = clock.now()
    svc.feed([Reading(param="spo2", value=None, unit="%", valid=False, flags=("sensor_off",), receive_time=t,
                      source="spo2"),
              DeviceStatus(kind="probe_off", param="spo2", receive_time=t)])
    for _ in range(12 * 22):
        clock.advance(5)
        svc.feed([Reading(param="hr", value=74, unit="bpm", receive_time=clock.now(), source="ecg")])
        svc.tick()
    return svc, clock, {}, ()


def st_discharge_form(tmp_path):
    svc, clock = new_service(tmp_path)
    svc.record_baseline(author="AB")
    svc.start_infusion(author="AB", concentration_mg_ml=0.35, advisory_reason="one baseline BP in this test")
    minutes(svc, clock, 20)
    svc.stop_infusion(author="AB", reason="dose complete")
    minutes(svc, clock, 5)
    return svc, clock, {}, ("d",)


def st_forms_compact(tmp_path):
    svc, clock, opts, _ = st_link_lost(tmp_path)
    return svc, clock, opts, ("n",)


def st_help(tmp_path):
    svc, clock, opts, _ = st_alarms(tmp_path)
    return svc, clock, opts, ("question_mark",)


def st_replay(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
    from replay_kit import record, surge_reactions

    from chairside.replay import ReplayPlayer, Replayer, load_recording

    path = record(tmp_path / "a-rather-long-recording-name-surge.chairside", reactions=surge_reactions(),
                  duration_s=1500)
    player = ReplayPlayer(Replayer(load_recording(path)), speed=1.0, playing=False)
    player.seek_by(1200)
    return player, player.clock, {"replay": player}, ()


STATES = [st_no_session, st_start_form, st_alarms, st_link_lost, st_probe_off_stale, st_discharge_form,
          st_forms_compact, st_help, st_replay]


@pytest.mark.parametrize("state", STATES, ids=[s.__name__[3:] for s in STATES])
async def test_nothing_is_cut_mid_word_at_80x24(tmp_path, state):
    svc, clock, opts, keys = state(tmp_path)
    opts.setdefault("show_start", False)
    player = opts.get("replay")
    if player is not None:
        svc = player.service
    app = create_app(svc, clock, None, flash=False, bell=False, **opts)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            if keys:
                await pilot.press(*keys)
                await settle(pilot)
            if player is not None:
                app.refresh_replay()  # the app's timer does it every 0.5 s
            for _ in range(3):
                await pilot.pause()
            rows = screen_rows(app)
            assert len(rows) == 24
            problems = cuts(rows)
            assert not problems, "\n".join(problems + ["", *rows])
            if player is not None:
                assert "read-only" in rows[0] or "read-only" in rows[1]
    finally:
        if player is not None:
            player.replayer.close()
        else:
            svc.shutdown()


def test_the_scan_finds_the_issues_fragments():
    """The scan itself can fail: the rows the issue saw are caught."""
    rows = [" 02:58:39Z · SIM · No session open — F2: new session · readings are shown, not",
            "╰───────── lim 90–140 / hi 90 ─╯╰─ lim 50–1… ─╯",
            "│ no data from the m│"]
    found = cuts(rows)
    assert any("readings are shown, not" in f for f in found)
    assert any("lim 50–1…" in f or "cut before '…'" in f for f in found)
    assert any("no data from the monitor" in f for f in found)


def test_fit_words_and_fit_parts_keep_whole_words_within_the_width():
    from chairside.ui.format import fit_parts, fit_words

    text = "** Systolic BP rise from baseline: 208 >= baseline 128 + 40"
    for width in range(3, len(text) + 2):
        out = fit_words(text, width)
        assert len(out) <= width, (width, out)
        if out != text:
            kept = out.removesuffix(" …").removesuffix("…")
            assert text.startswith(kept) and (kept == "" or text[len(kept)] in " ·,;:—-"), (width, out)
    head = fit_parts(["09:01:00Z", ("No session open — F2: new session", "No session — F2: new session"),
                      ("readings are shown, not recorded", "not recorded")], 80)
    assert head == "09:01:00Z · No session open — F2: new session · readings are shown, not recorded"
    assert fit_parts(["09:01:00Z", "SIM", ("No session open — F2: new session", "No session — F2: new session"),
                      ("readings are shown, not recorded", "not recorded")], 70) == (
        "09:01:00Z · SIM · No session open — F2: new session · not recorded")
