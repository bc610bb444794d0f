"""The monitor screen: header, course line, notices, alarm bar, vital tiles, trend chart, infusion
panel, event timeline and device line.

Owns: ``MonitorScreen`` and its key bindings (acknowledge, audio pause, infusion actions,
one key per observation form, intervention, note, amendment, baseline, discharge, course,
help).
It renders the snapshot the app hands down (``show``) and owns no clinical state.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from chairside.service.model import Snapshot
from chairside.ui.alarm_bar import AlarmBar
from chairside.ui.course_line import CourseLine
from chairside.ui.device_line import DeviceLineView
from chairside.ui.infusion_panel import InfusionPanel
from chairside.ui.session_header import SessionHeader
from chairside.ui.timeline_view import TimelineView
from chairside.ui.trend_chart import TrendChart
from chairside.ui.vital_tile import VitalTile

TILES = (("nibp", "NIBP", "mmHg"), ("hr", "HR", "bpm"), ("spo2", "SpO2", "%"), ("pr", "PR", "bpm"),
         ("rr", "RR", "/min"))
OPTIONAL_TILES = frozenset({"rr"})  # hidden until the monitor sends the parameter (respiratory rate)

# key, action, description, shown in the footer
KEYS: tuple[tuple[str, str, str, bool], ...] = (
    # F9 / F10 are the app's priority keys (they work in every form, shown in every footer);
    # a / s work on the monitor itself
    ("a", "app.acknowledge", "Ack alarms", False),
    ("s", "app.pause_audio", "Audio pause", False),
    ("i", "app.start_infusion", "Start", True),
    ("r", "app.change_rate", "Rate", True),
    ("p", "app.pause_resume", "Pause/resume", True),
    ("x", "app.stop_infusion", "Stop", True),
    ("1", "app.observe('cadss')", "CADSS", False),
    ("2", "app.observe('moaas')", "MOAA/S", False),
    ("3", "app.observe('rass')", "RASS", False),
    ("4", "app.observe('nausea')", "Nausea/vomit", False),
    ("5", "app.observe('anxiety')", "Anxiety", False),
    ("6", "app.observe('htn_symptoms')", "Crisis symptoms", False),
    ("7", "app.observe('other')", "Other obs.", False),
    ("m", "app.intervention", "Intervention", False),
    ("n", "app.note", "Note", False),
    ("e", "app.amend", "Amend", False),
    ("b", "app.baseline", "Baseline", False),
    ("v", "app.manual_vitals", "Manual vitals", False),
    ("d", "app.discharge", "Discharge", True),
    ("c", "app.course", "Course (earlier sessions)", False),
    ("f2", "app.new_session", "New session", False),
    ("ctrl+b", "app.toggle_bell", "Bell on/off", False),
    ("question_mark,h,f1", "app.help", "Help", True),
)


# shorter footer labels, so the whole footer (up to "? Help") fits 80 columns
FOOTER_LABELS = {"p": "Pause"}


class Notices(Static):
    """The red notices line above the alarm bar (link lost, recording degraded)."""

    def on_resize(self) -> None:
        top_changed(self)


class TileRow(Horizontal):
    """The row of vital tiles."""

    def on_resize(self) -> None:
        top_changed(self)


def top_changed(widget) -> None:
    """The monitor's top block (notices, alarm bar, tiles) changed size: a form open over
    the monitor moves to stay below the tiles (called from the widgets' Resize events, which
    come after the monitor's layout, so the regions read then are current)."""
    screen = widget.screen
    for above in widget.app.screen_stack[widget.app.screen_stack.index(screen) + 1:] \
            if screen in widget.app.screen_stack else ():
        fit = getattr(above, "fit_below_monitor", None)
        if fit is not None:
            fit()


class MonitorScreen(Screen):
    # priority keys: the app runs the action (and waits for the form it opens to be mounted
    # and focused) before it reads the next key, so keys typed right after "i" go into the
    # start form instead of being lost or opening other forms ("i" then "3" opened RASS)
    BINDINGS = [Binding(k, a, FOOTER_LABELS.get(k, d), show=s, priority=True) for k, a, d, s in KEYS]

    def compose(self) -> ComposeResult:
        yield SessionHeader()
        yield CourseLine()
        yield Notices("", id="notices", markup=False)
        yield AlarmBar()
        with TileRow(id="tiles"):
            for key, label, unit in TILES:
                tile = VitalTile(key, label, unit)
                tile.display = key not in OPTIONAL_TILES
                yield tile
        with Horizontal(id="middle"):
            yield TrendChart()
            yield InfusionPanel()
        yield TimelineView()
        yield DeviceLineView()
        yield Footer()

    ready = False

    def on_mount(self) -> None:
        self.ready = True
        snap = getattr(self.app, "snapshot", None)
        if snap is not None:
            self.show(snap, bell=getattr(self.app, "bell_enabled", True))

    #: below this height the tiles shrink to one line each while a form is open
    COMPACT_BELOW_ROWS = 36

    def on_screen_suspend(self) -> None:
        """A form, the help or another screen went over the monitor."""
        self.under_panel = True
        self._set_compact()

    def on_screen_resume(self) -> None:
        self.under_panel = False
        self._set_compact()

    under_panel = False

    def _set_compact(self) -> None:
        self.set_class(self.under_panel and self.size.height < self.COMPACT_BELOW_ROWS, "-compact")

    def on_resize(self) -> None:
        self._set_compact()
        self.set_class(self.size.height >= 36, "-tall")
        self.set_class(self.size.width >= 120, "-wide")
        try:  # narrow terminals: a compact footer, so "d Discharge" and "? Help" stay visible
            footer = self.query_one(Footer)
            footer.compact = self.size.width < 110
            palette = self.size.width >= 100
            if footer.show_command_palette != palette:
                footer.show_command_palette = palette
                footer.refresh(recompose=True)
        except NoMatches:
            pass

    def show(self, snap: Snapshot, *, bell: bool = True) -> None:
        """Hand the snapshot down to every widget (each re-renders only what changed)."""
        if not self.ready:
            return
        try:
            self._show(snap, bell)
        except NoMatches:  # children not mounted yet: the next snapshot will do
            pass

    def _show(self, snap: Snapshot, bell: bool) -> None:
        self.query_one(SessionHeader).show(snap)
        notices = self.query_one("#notices", Static)
        text = "  ".join(snap.notices)
        if str(notices.content) != text:
            notices.update(text)
            notices.set_class(bool(text), "-on")
        self.query_one(AlarmBar).show(snap.alarms)
        for t in snap.tiles:
            try:
                tile = self.query_one(f"#tile-{t.key}", VitalTile)
                if not tile.display:
                    tile.display = True
                tile.show(t)
            except Exception:  # noqa: BLE001 - a tile this layout does not show
                pass
        self.query_one(TrendChart).show(snap.trends, snap.trend_window_s)
        self.query_one(InfusionPanel).show(snap)
        self.query_one(TimelineView).show(snap.timeline)
        self.query_one(DeviceLineView).show(snap.device, bell)

    def set_flash(self, high_on: bool, medium_on: bool) -> None:
        if not self.ready:
            return
        try:
            self.query_one(AlarmBar).set_phase(high_on, medium_on)
        except NoMatches:
            pass
