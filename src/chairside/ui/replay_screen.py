"""The monitor screen of a replay: the same tiles, alarms, trend and timeline, read-only,
under a replay banner, with the replay's own keys.

Owns: ``ReplayMonitorScreen`` (a ``MonitorScreen`` whose clinical keys are replaced by
play/pause, speed, seek ±1 / ±10 min, start/end, next/previous alarm or event, the
differences list and help) and ``REPLAY_KEYS``. Seeks run in thread workers: a seek
backwards rebuilds the replay from its start and must not hold up the screen.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from chairside.ui.monitor_screen import MonitorScreen
from chairside.ui.replay_banner import ReplayBanner

# key, action, description, shown in the footer
REPLAY_KEYS: tuple[tuple[str, str, str, bool], ...] = (
    ("space", "toggle", "Play/pause", True),
    ("plus,equals_sign", "faster", "Faster", True),
    ("minus", "slower", "Slower", True),
    ("right", "seek(60)", "+1 min", True),
    ("left", "seek(-60)", "-1 min", True),
    ("shift+right,pagedown", "seek(600)", "+10 min", False),
    ("shift+left,pageup", "seek(-600)", "-10 min", False),
    ("home", "seek_start", "To the start", False),
    ("end", "seek_end", "To the end", False),
    ("n", "jump('next_alarm')", "Next alarm", True),
    ("p", "jump('previous_alarm')", "Prev alarm", False),
    ("full_stop", "jump('next_event')", "Next event", False),
    ("comma", "jump('previous_event')", "Previous event", False),
    ("d", "differences", "Differences", True),
    ("question_mark,h,f1", "app.help", "Help", True),
)


class ReplayMonitorScreen(MonitorScreen, inherit_bindings=False):
    BINDINGS = [Binding(k, a, d, show=s) for k, a, d, s in REPLAY_KEYS]

    def compose(self) -> ComposeResult:
        yield ReplayBanner()
        yield from super().compose()

    @property
    def player(self):
        return self.app.replay

    def _in_worker(self, name: str, fn) -> None:
        self.app.run_worker(fn, thread=True, name=name, group="replay", exclusive=False, exit_on_error=False)

    def action_toggle(self) -> None:
        self.player.toggle()
        self.app.refresh_replay()

    def action_faster(self) -> None:
        self.player.faster()
        self.app.refresh_replay()

    def action_slower(self) -> None:
        self.player.slower()
        self.app.refresh_replay()

    def action_seek(self, seconds: float) -> None:
        self._in_worker("replay-seek", lambda: self.player.seek_by(float(seconds)))

    def action_seek_start(self) -> None:
        self._in_worker("replay-seek", lambda: self.player.seek(self.player.replayer.start))

    def action_seek_end(self) -> None:
        self._in_worker("replay-seek", lambda: self.player.seek(self.player.replayer.end))

    def action_jump(self, which: str) -> None:
        self._in_worker("replay-jump", lambda: self.player.jump(which))

    def action_differences(self) -> None:
        from chairside.ui.replay_diff_screen import DifferencesScreen

        self.app.push_screen(DifferencesScreen())
