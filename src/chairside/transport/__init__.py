"""Transport: the I/O shell around the drivers. Ports opened only through
``serial.serial_for_url``; read loop, reconnect with backoff, technical link events,
HL7 TCP listener, raw-capture tee and replay source.

Modules: ``serial_link`` (``Link``), ``hl7_listener`` (``Hl7Listener``), ``capture``
(the capture file: ``CaptureWriter``, ``CaptureReader``, ``iter_capture``), ``replay_source``
(``ReplaySource``, ``parse_speed``), ``datapath`` (shared pieces,
``TransportConfig``, ``LinkStats``). ``open_source`` picks a ``Link`` or an
``Hl7Listener`` from a ``--port`` value.

May import: chairside.drivers, chairside.domain, serial, stdlib. Must not import:
textual, chairside.store, chairside.alarms, chairside.service.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from chairside.domain.clock import Clock
from chairside.drivers.base import Driver
from chairside.transport.capture import (
    CaptureError,
    CaptureReader,
    CaptureWriter,
    capture_info,
    is_capture,
    iter_capture,
)
from chairside.transport.datapath import LinkStats, OutputCallback, RawCallback, TransportConfig
from chairside.transport.hl7_listener import Hl7Listener, check_bind, exposure_warning
from chairside.transport.replay_source import ReplaySource, parse_speed
from chairside.transport.serial_link import Link, check_url, serial_settings

LISTEN_SCHEME = "listen"
FILE_SCHEME = "file:"  # file:PATH (or file:///PATH): a capture read as if it were a port


def _file_path(port: str) -> str:
    path = port[len(FILE_SCHEME):]
    if path.startswith("//"):
        path = path[2:]
    return path


def _listen_address(port: str) -> tuple[str, int]:
    parts = urlsplit(port)
    try:
        host = parts.hostname or "127.0.0.1"
        number = parts.port if parts.port is not None else 2575
    except ValueError:
        raise ValueError(f"bad listen address {port!r}; expected listen://HOST:PORT") from None
    return host, number


def check_port(port: str) -> None:
    """Raise ValueError (saying what is wrong, one line) for a ``--port`` value that can never
    open: a malformed URL, an unknown scheme, a bad ``listen://`` address, or a ``listen://``
    port that cannot be bound now (in use). Leaves nothing open."""
    if port.lower().startswith(f"{LISTEN_SCHEME}://"):
        check_bind(*_listen_address(port))
        return
    if port.lower().startswith(FILE_SCHEME):
        path = _file_path(port)
        if not path:
            raise ValueError(f"bad file port {port!r}; expected file:PATH")
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise ValueError(f"{port}: cannot read {path}: {exc.strerror or exc}") from None
        return
    check_url(port)


def config_from_settings(settings: Any, base: TransportConfig | None = None) -> TransportConfig:
    """``base`` (default ``TransportConfig()``) with the HL7 listener's settings
    (``hl7_max_connections``, ``hl7_idle_timeout_s``, ``hl7_message_timeout_s``,
    ``hl7_max_message_bytes``, ``hl7_senders``) of a ``chairside.settings.Settings``-like
    object; attributes it lacks keep their defaults."""
    base = base or TransportConfig()
    if settings is None:
        return base
    names = {"hl7_max_connections": "listen_max_connections", "hl7_idle_timeout_s": "listen_idle_timeout_s",
             "hl7_message_timeout_s": "listen_message_timeout_s",
             "hl7_max_message_bytes": "listen_max_message_bytes", "hl7_senders": "listen_senders"}
    changes = {field: getattr(settings, name) for name, field in names.items()
               if getattr(settings, name, None) is not None}
    if "listen_senders" in changes:
        changes["listen_senders"] = tuple(changes["listen_senders"])
    return dataclasses.replace(base, **changes)


def port_warning(port: str) -> str | None:
    """A warning to print before opening ``port``: a ``listen://`` address that is not
    loopback names what it exposes. None otherwise (and for a malformed value)."""
    if not port.lower().startswith(f"{LISTEN_SCHEME}://"):
        return None
    try:
        host, number = _listen_address(port)
    except ValueError:
        return None
    return exposure_warning(host, number)


def open_source(port: str, driver: Driver | str, *, clock: Clock, on_output: OutputCallback,
                on_raw: RawCallback | None = None, serial: Mapping[str, Any] | None = None,
                config: TransportConfig | None = None) -> Link | Hl7Listener:
    """A not-yet-started ``Link`` for a port URL, an ``Hl7Listener`` for ``listen://HOST:PORT``,
    or a ``ReplaySource`` for ``file:PATH`` (a capture read as if it were a port, at its own
    pace, stamped with ``clock``).

    With ``listen://`` each connection gets its own driver (by name, or a new instance of
    the given driver's class, which must take no arguments); a
    missing host means 127.0.0.1, a missing port 2575. Raises ValueError on a bad
    ``listen://`` value or serial setting.
    """
    if port.lower().startswith(f"{LISTEN_SCHEME}://"):
        host, number = _listen_address(port)
        # each connection gets its own driver: by name, or a new instance of the given one's class
        factory = driver if isinstance(driver, str) else type(driver)
        return Hl7Listener(factory, clock=clock, on_output=on_output, on_raw=on_raw, host=host,
                           port=number, config=config)
    if port.lower().startswith(FILE_SCHEME):
        # a capture (CSRAW1 or plain device bytes) read at its own pace, stamped now
        return ReplaySource(_file_path(port), driver, on_output=on_output, speed=1.0, on_raw=on_raw,
                            config=config, live_clock=clock)
    return Link(port, driver, clock=clock, on_output=on_output, on_raw=on_raw, serial=serial, config=config)


__all__ = [
    "CaptureError",
    "CaptureReader",
    "CaptureWriter",
    "Hl7Listener",
    "Link",
    "LinkStats",
    "ReplaySource",
    "TransportConfig",
    "capture_info",
    "check_port",
    "config_from_settings",
    "is_capture",
    "iter_capture",
    "open_source",
    "parse_speed",
    "port_warning",
    "serial_settings",
]
