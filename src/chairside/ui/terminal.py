"""Which terminal the console draws on, whatever stderr was redirected to.

Owns: :func:`driver_class`, the Textual driver the console runs with. Textual's Linux
driver writes its frames to ``sys.__stderr__``: with ``chairside 2>errors.log`` (keeping
the warnings a command prints) the console would draw into the file and leave the nurse's
terminal blank. This driver writes to stderr when it is a terminal (Textual's default), else
to stdout when that is one, else to the process's controlling terminal (``/dev/tty``), and
takes the size from the terminal it draws on. With no terminal at all it keeps Textual's
behaviour. Keys are read from stdin as before.
May import: textual, stdlib. Must not import: the service or store (a UI helper).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from textual import constants


def _terminal_stream() -> tuple[IO[str] | None, bool]:
    """(a text stream on a terminal other than stderr, True if this module opened it)."""
    for stream in (sys.__stderr__, sys.__stdout__):
        try:
            if stream is not None and stream.isatty():
                return stream, False
        except (ValueError, OSError):
            continue
    try:
        return open("/dev/tty", "w", encoding="utf-8", errors="replace"), True  # noqa: SIM115
    except OSError:
        return None, False


def driver_class() -> Any:
    """The driver for ``App(driver_class=...)``; None = Textual's own choice (Windows, a
    driver named by ``TEXTUAL_DRIVER``)."""
    if sys.platform == "win32" or constants.DRIVER is not None:
        return None
    from textual.drivers.linux_driver import LinuxDriver

    class TerminalDriver(LinuxDriver):
        """LinuxDriver drawing on the terminal even when stderr is redirected."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._own_tty: IO[str] | None = None
            stream, opened = _terminal_stream()
            if stream is not None:
                self._file = stream
                if opened:
                    self._own_tty = stream

        def _get_terminal_size(self) -> tuple[int, int]:
            try:
                size = os.get_terminal_size(self._file.fileno())
                if size.columns and size.lines:
                    return size.columns, size.lines
            except (AttributeError, ValueError, OSError):
                pass
            return super()._get_terminal_size()

        def stop_application_mode(self) -> None:
            try:
                super().stop_application_mode()
            finally:
                if self._own_tty is not None:
                    try:
                        self._own_tty.close()
                    except OSError:
                        pass
                    self._own_tty = None

    return TerminalDriver
