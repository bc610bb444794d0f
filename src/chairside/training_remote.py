"""The instructor's panel on a second terminal: a training run's controls over a local socket.

Owns: ``InstructorServer`` — serves one ``TrainingRun``'s instructor controls (status, the
scenario log, pause/resume, time scale, inject, jump to a state, notes, end with the
debrief) as JSON lines on a Unix-domain socket that only the user who started the run can
open (the socket file is created 0600 inside a folder that is 0700); ``RemoteRun`` — the
same controls seen from the other terminal, with the attributes and methods the
instructor panel (``chairside.ui.instructor_panel``) reads from a ``TrainingRun``, so one
panel serves both the pop-up on the trainee's screen and ``chairside train --instructor``;
``default_socket_path``. No network port is opened: a classroom's other machines cannot
reach a run.

Protocol: one JSON object a line each way. Request ``{"op": NAME, ...}``; reply
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "what was refused and why"}``.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import platformdirs

from chairside.training import TrainingError, TrainingRun

__all__ = ["InstructorServer", "RemoteRun", "RemoteRunError", "default_socket_path"]

MAX_LINE = 64 * 1024  # a request line longer than this is refused (a note is a few lines at most)


def default_socket_path() -> Path:
    """Where ``chairside train`` listens and ``--instructor`` attaches by default."""
    return Path(platformdirs.user_runtime_dir("chairside", ensure_exists=False)) / "instructor.sock"


class RemoteRunError(RuntimeError):
    """The run could not be reached, or it refused a control (the message says why)."""


def _ops(run: TrainingRun) -> dict[str, Callable[[dict[str, Any]], Any]]:
    def status(_: dict[str, Any]) -> Any:
        return {**run.status(), "recent": run.recent(), "debrief_ready": run.final is not None}

    def info(_: dict[str, Any]) -> Any:
        return {"scenario": run.scenario.name, "title": run.scenario.title, "seed": run.seed,
                "states": run.states(), "artefact_kinds": run.artefact_kinds(),
                "device_events": run.device_events(), "speeds": run.speeds()}

    def pause(_: dict[str, Any]) -> Any:
        run.pause()
        return "paused: the patient, the monitor and the alarm timers are frozen"

    def resume(_: dict[str, Any]) -> Any:
        run.resume()
        return "resumed"

    def speed(req: dict[str, Any]) -> Any:
        value = float(req["value"])
        run.set_speed(value)
        return f"time scale x{value:g}"

    def inject(req: dict[str, Any]) -> Any:
        event = str(req["event"])
        args = req.get("args") or {}
        if not isinstance(args, dict):
            raise TrainingError("inject: args must be a table")
        run.inject(event, **args)
        return f"{event} injected"

    def jump(req: dict[str, Any]) -> Any:
        run.jump(str(req["state"]))
        return f"jumped to state {req['state']}"

    def note(req: dict[str, Any]) -> Any:
        run.note(str(req.get("text", "")))
        return "note added"

    def end(_: dict[str, Any]) -> Any:
        return json.loads(json.dumps(run.end(), default=str))

    def debrief(_: dict[str, Any]) -> Any:
        return json.loads(json.dumps(run.final or run.debrief(), default=str))

    return {"status": status, "info": info, "pause": pause, "resume": resume, "speed": speed, "inject": inject,
            "jump": jump, "note": note, "end": end, "debrief": debrief}


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                self._reply({"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                return
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("a request is a JSON object")
                op = self.server.ops.get(str(req.get("op")))
                if op is None:
                    raise ValueError(f"unknown control {req.get('op')!r}; known: {', '.join(self.server.ops)}")
                reply = {"ok": True, "result": op(req)}
            except (TrainingError, ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "error": str(exc) or type(exc).__name__}
            self._reply(reply)

    def _reply(self, obj: dict[str, Any]) -> None:
        try:
            self.wfile.write((json.dumps(obj, default=str) + "\n").encode())
        except OSError:
            pass  # the instructor's terminal went away: nothing to tell


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: str, ops: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.ops = ops
        super().__init__(path, _Handler)


class InstructorServer:
    """Serve ``run``'s instructor controls on the Unix socket ``path`` until ``close()``.
    A live socket already at ``path`` (another run) is refused; a stale one is replaced."""

    def __init__(self, run: TrainingRun, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_socket_path()
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise TrainingError(f"{self.path}: exists and is not a socket; not replacing it")
            if _alive(self.path):
                raise TrainingError(f"{self.path}: another training run is already serving its instructor panel")
            self.path.unlink()
        old = os.umask(0o177)  # the socket file is born 0600
        try:
            self._server = _Server(str(self.path), _ops(run))
        finally:
            os.umask(old)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name="chairside-instructor-socket")
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _alive(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class RemoteRun:
    """A running training run seen from the instructor's own terminal. Calls block for at
    most ``timeout`` seconds; a refusal or a lost run raises ``RemoteRunError``."""

    def __init__(self, path: Path | str | None = None, *, timeout: float = 5.0) -> None:
        self.path = Path(path) if path is not None else default_socket_path()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(self.path))
        except OSError as exc:
            self._sock.close()
            raise RemoteRunError(f"{self.path}: no training run to attach to ({exc.strerror or exc}); start one "
                                 "with `chairside train --scenario NAME` first") from None
        self._file = self._sock.makefile("rwb")
        info = self._call("info")
        self.scenario = SimpleNamespace(name=info["scenario"], title=info["title"])
        self.seed = info["seed"]
        self._info = info
        self._status: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None

    def _call(self, op: str, **fields: Any) -> Any:
        with self._lock:
            try:
                self._file.write((json.dumps({"op": op, **fields}) + "\n").encode())
                self._file.flush()
                line = self._file.readline()
            except OSError as exc:
                raise RemoteRunError(f"the training run went away ({exc.strerror or exc})") from None
        if not line:
            raise RemoteRunError("the training run went away (its console closed)")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RemoteRunError(reply.get("error", "refused"))
        return reply["result"]

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._sock.close()

    # -- what the panel reads
    def status(self) -> dict[str, Any]:
        self._status = self._call("status")
        return self._status

    def recent(self, n: int = 8) -> list[str]:
        return list(self.status().get("recent", []))[-n:]

    def states(self) -> list[str]:
        return list(self._info["states"])

    def artefact_kinds(self) -> list[str]:
        return list(self._info["artefact_kinds"])

    def device_events(self) -> list[str]:
        return list(self._info["device_events"])

    def speeds(self) -> list[float]:
        return [float(s) for s in self._info["speeds"]]

    @property
    def paused(self) -> bool:
        return bool(self.status()["paused"])

    @property
    def speed(self) -> float:
        return float(self.status()["speed"])

    # -- the controls (``log`` is accepted for the panel's sake: the run always records them)
    def pause(self, *, log: bool = True) -> None:
        self._call("pause")

    def resume(self, *, log: bool = True) -> None:
        self._call("resume")

    def set_speed(self, speed: float, *, log: bool = True) -> None:
        self._call("speed", value=speed)

    def pump_log(self) -> None:
        """The run copies its own log into the record; nothing to do from here."""

    def inject(self, event: str, **args: Any) -> None:
        self._call("inject", event=event, args=args)

    def jump(self, state: str) -> None:
        self._call("jump", state=state)

    def note(self, text: str) -> None:
        self._call("note", text=text)

    def end(self) -> dict[str, Any]:
        self.final = self._call("end")
        return self.final

    def debrief(self) -> dict[str, Any]:
        return self._call("debrief")
