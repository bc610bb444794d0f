"""``chairside board``: the clinic board on screen — one tile per chair.

Owns: ``BoardApp`` (a grid of ``ChairTile``s refreshed from a ``chairside.board.state.
BoardModel`` twice a second; the worst active alarm flashes as on the chair — high 2 Hz,
medium 0.5 Hz; a chair's new alarm sounds on the board with the IEC pattern of its
priority through ``chairside.audio`` when there is an audible path, else the bell),
``ChairDetail`` (Enter on a tile: that chair's alarms, vitals and state; Escape returns).
Each tile: chair name, pseudonym, phase and minutes in it, dose given of ordered, next BP
due (overdue in colour), the worst active alarm, HR, SpO2 and the last BP with its age,
link state, NOT REPORTING / OFFLINE. 4 chairs fit 80x24, 12 fit 160x48.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from chairside.domain.describe import PRIORITY_RANK


def _minutes_since(iso: str | None) -> str:
    if not iso:
        return "—"
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return "—"
    return f"{max(0, (datetime.now(timezone.utc) - t).total_seconds()) / 60:.0f} min"


def _v(vitals: dict[str, Any], key: str) -> str:
    v = vitals.get(key) or {}
    if v.get("value") is None:
        return "---"
    return f"{v['value']:.0f}"


def tile_text(chair: dict[str, Any], width: int = 36) -> str:
    """The lines of one chair's tile (plain text; the tile's class carries the colour)."""
    st = chair.get("state") or {}
    vit = st.get("vitals") or {}
    name = chair["chair"]
    status = chair["status"]
    head = f"{name}  {st.get('pseudonym') or '(no session)'}"
    if status != "ok":
        head += f"  {status}"
    phase = (st.get("phase") or "—").replace("_", " ")
    dose = f"{st.get('given_mg_kg', 0):.2f}"
    if st.get("ordered_mg_kg"):
        dose += f"/{st['ordered_mg_kg']:.2f} mg/kg"
    else:
        dose += " mg/kg"
    nb = st.get("next_bp_due_s")
    bp_due = "BP due —" if nb is None else (f"BP OVERDUE {-nb / 60:.0f} min" if nb < 0 else f"BP in {nb / 60:.0f} min")
    nibp = vit.get("nibp") or {}
    bp = "---/---" if nibp.get("value") is None else f"{nibp['value']:.0f}/{(nibp.get('value2') or 0):.0f}"
    age = nibp.get("age_s")
    bp += "" if age is None else f" {age / 60:.0f}m ago"
    alarm = "no alarm"
    worst = None
    for a in st.get("alarms") or []:
        if worst is None or PRIORITY_RANK.get(a["priority"], 0) > PRIORITY_RANK.get(worst["priority"], 0):
            worst = a
    if worst is not None:
        alarm = f"{worst['priority'].upper()}: {worst['message']}"
    lines = [head, f"{phase} {_minutes_since(st.get('phase_since'))} · {dose}",
             f"HR {_v(vit, 'hr')}  SpO2 {_v(vit, 'spo2')}  BP {bp}", f"{bp_due} · link {st.get('link_state') or '—'}",
             alarm]
    return "\n".join(line[:width] for line in lines)


class ChairTile(Static, can_focus=True):
    def __init__(self, name: str) -> None:
        super().__init__("", id=f"chair-{name}", classes="chair-tile")
        self.chair_name = name


class ChairDetail(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to the board")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.chair_name = name

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("", id="chair-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_detail()
        self.set_interval(0.5, self.refresh_detail)

    def refresh_detail(self) -> None:
        chair = next((c for c in self.app.model.snapshot() if c["chair"] == self.chair_name), None)
        if chair is None:
            return
        st = chair.get("state") or {}
        lines = [tile_text(chair, width=200), "", "Active alarms:"]
        lines += [f"  {a['priority'].upper():<6} {a['message']}" + (" (acknowledged)" if a["acknowledged"] else "")
                  for a in st.get("alarms") or []] or ["  none"]
        lines += ["", f"Infusion {st.get('infusion_state', '—')}, {st.get('drug', '')}: given {st.get('given_mg', 0)} mg",
                  f"Record: {st.get('last_seq', 0)} events; alarm events seen by the board: {chair['alarm_events']}"]
        self.query_one("#chair-detail", Static).update("\n".join(lines))


class BoardApp(App[None]):
    CSS = """
    #board { grid-size: 2; grid-gutter: 0 1; grid-rows: 7; height: auto; }
    .chair-tile { height: 7; border: round $primary; padding: 0 1; }
    .chair-tile:focus { border: double $accent; }
    .alarm-high { background: $error 60%; }
    .alarm-medium { background: $warning 50%; }
    .alarm-low { background: $primary 20%; }
    .flash-off { background: $surface; }
    .not-reporting { border: round $error; color: $text-muted; }
    """
    BINDINGS = [Binding("enter", "open", "Open chair"), Binding("q", "quit", "Quit")]
    TITLE = "Chairside — clinic board"

    def __init__(self, model: Any, *, local: Any = None, subscriber: Any = None, audio: Any = None) -> None:
        super().__init__()
        self.model, self.local, self.subscriber, self.audio = model, local, subscriber, audio
        self._ticks = 0
        self._heard: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="board-status", markup=False)
        yield Grid(id="board")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_board()
        self.set_interval(0.25, self.refresh_board)

    def on_resize(self) -> None:
        n = max(1, len(self.model.chairs))
        cols = max(1, min(4, self.size.width // 38))
        self.query_one("#board", Grid).styles.grid_size_columns = min(cols, n)

    def refresh_board(self) -> None:
        import time

        self._ticks += 1
        self.model.tick(time.monotonic())
        grid = self.query_one("#board", Grid)
        chairs = self.model.snapshot()
        for chair in chairs:
            tid = f"chair-{chair['chair']}"
            try:
                tile = grid.query_one(f"#{tid}", ChairTile)
            except NoMatches:  # a chair appeared: add its tile
                tile = ChairTile(chair["chair"])
                grid.mount(tile)
                self.on_resize()
            tile.update(tile_text(chair))
            worst = chair["worst_alarm"]
            for p in ("high", "medium", "low"):
                tile.set_class(worst == p, f"alarm-{p}")
            # flashing as on the chair: high 2 Hz, medium 0.5 Hz (ticks are 0.25 s), low steady
            off = (worst == "high" and self._ticks % 2 == 1) or (worst == "medium" and (self._ticks // 4) % 2 == 1)
            tile.set_class(off, "flash-off")
            tile.set_class(chair["status"] in ("NOT REPORTING", "OFFLINE"), "not-reporting")
            self._sound(chair)
        link = ""
        if self.subscriber is not None and not self.subscriber.connected.is_set():
            link = " · BOARD LINK DOWN: " + (self.subscriber.last_error or "connecting to the broker")
        counts = f"{len(chairs)} chairs" + (f" · {self.model.malformed} malformed messages ignored"
                                            if self.model.malformed else "")
        self.query_one("#board-status", Static).update(counts + link)

    def _sound(self, chair: dict[str, Any]) -> None:
        n = chair["alarm_events"]
        if n > self._heard.get(chair["chair"], 0) and chair["worst_alarm"]:
            if self.audio is None or not self.audio.play(chair["worst_alarm"]):
                self.bell()
        self._heard[chair["chair"]] = n

    def action_open(self) -> None:
        focused = self.focused
        if isinstance(focused, ChairTile):
            self.push_screen(ChairDetail(focused.chair_name))
