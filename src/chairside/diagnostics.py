"""The diagnostic log: a rotating text file of link events, decode errors and exceptions.

Owns: ``setup_diagnostics`` (attaches a ``RotatingFileHandler`` to the ``chairside``
logger, in the user's log folder from platformdirs unless told otherwise), ``diag_path``,
and ``log_exception`` (for threads and the UI's uncaught errors). A clinic can send this
file instead of screenshots. No patient identifiers are written here by the service (the
session file holds them); only technical facts: ports, drivers, link states, decode
errors, store failures, tracebacks.

Must not import: textual, chairside.ui. Uses stdlib logging only (log record times are
the logging module's own wall clock: this is a technical log, not the clinical record).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

from platformdirs import user_log_dir

LOGGER_NAME = "chairside"
FILE_NAME = "chairside-diagnostic.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

_lock = threading.Lock()
_handler: logging.Handler | None = None


def default_log_dir() -> Path:
    """The user's log folder (``CHAIRSIDE_LOG_DIR`` overrides it)."""
    env = os.environ.get("CHAIRSIDE_LOG_DIR")
    if env:
        return Path(env)
    return Path(user_log_dir("chairside", appauthor=False))


def diag_path() -> Path | None:
    """Where the diagnostic log is being written (None when not set up or not writable)."""
    h = _handler
    if isinstance(h, logging.handlers.RotatingFileHandler):
        return Path(h.baseFilename)
    return None


class _LogFile(logging.handlers.RotatingFileHandler):
    """The diagnostic log file. When it cannot be written (a full disk, the very problem it
    may be logging) the record is dropped and counted, never printed over the console.
    Owner-only (0600) like every file Chairside writes: it names ports, paths and errors,
    and a traceback can carry a value; each new file of the rotation is created 0600
    whatever the umask, and an existing one is set to 0600 when opened."""

    dropped = 0

    def _open(self):  # noqa: ANN202 - logging's own method
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            pass  # not ours to change (a shared log named by CHAIRSIDE_LOG_DIR): leave it
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        type(self).dropped += 1


def setup_diagnostics(directory: Path | None = None, *, level: int = logging.INFO,
                      max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> Path | None:
    """Attach the rotating file handler to the ``chairside`` logger (once; idempotent).

    Returns the file path, or None when the folder cannot be created or written (the
    console keeps running; the failure is reported on stderr once).
    """
    global _handler
    with _lock:
        if _handler is not None:
            return diag_path()
        folder = Path(directory) if directory is not None else default_log_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = _LogFile(folder / FILE_NAME, maxBytes=max_bytes, backupCount=backups, encoding="utf-8",
                               delay=False)
        except OSError as exc:
            print(f"chairside: diagnostic log not available in {folder}: {exc}", file=sys.stderr)
            return None
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.setLevel(level)
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
        # the simulators package logs too (pty server, sim:// handler)
        sim_logger = logging.getLogger("simulators")
        sim_logger.addHandler(handler)
        if sim_logger.level == logging.NOTSET or sim_logger.level > level:
            sim_logger.setLevel(level)
        _handler = handler
        _install_thread_hook()
        return Path(handler.baseFilename)


def shutdown_diagnostics() -> None:
    """Detach and close the handler (tests; the end of the process)."""
    global _handler
    with _lock:
        h = _handler
        _handler = None
    if h is not None:
        logging.getLogger(LOGGER_NAME).removeHandler(h)
        logging.getLogger("simulators").removeHandler(h)
        h.close()


def log_exception(where: str, exc: BaseException | None = None) -> None:
    """Write an exception with its traceback to the diagnostic log."""
    logger = logging.getLogger(LOGGER_NAME + ".errors")
    if exc is None:
        logger.exception("%s", where)
    else:
        logger.error("%s: %r", where, exc, exc_info=(type(exc), exc, exc.__traceback__))


_previous_hook = None


def _install_thread_hook() -> None:
    global _previous_hook
    if _previous_hook is not None:
        return
    _previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log_exception(f"uncaught in thread {args.thread.name if args.thread else '?'}",
                          args.exc_value)
        if _previous_hook is not None:
            _previous_hook(args)

    threading.excepthook = hook
