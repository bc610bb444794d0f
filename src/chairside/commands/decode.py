"""``chairside decode --driver D FILE|-``: raw device bytes -> one JSON line per reading.

Owns: the output of the ``decode`` command (DESIGN.md contract): on stdout one object per
reading, exactly ``{"t", "param", "value", "unit", "valid", "flags"}`` plus ``"source"``
for ``pr`` (``spo2``/``nibp``); ``t`` is the device time (ISO 8601, UTC), or null when the
protocol gives none (a file has no receive time). A final stderr line counts frames
decoded, frames rejected and bytes skipped. ``--status`` adds the device-status records
(probe off, device alarms...) as ``{"t", "status", "active", "param", "detail", "flags"}``.

Text mode (``--text``, automatic for ``*.txt`` files) decodes the vector files of
../shared/vectors, which show the wire bytes as text: lines starting with ``#`` are
comments and dropped; for ``hl7`` each remaining line is a segment and is sent ended by CR;
for ``masimo`` each line is sent ended by CR LF (a literal ``<CR><LF>`` in the file is the
line end); for ``ge-s5`` only lines ``hex: 7E 28 ...`` are read, as hex bytes.

A raw capture (the ``--raw FILE`` tee of ``record``/``run``, recognised by its magic
bytes) is decoded chunk by chunk as it was received, each reading stamped with its chunk's
receive time (so ``t`` is the receive time where the protocol gives no device time); the
driver is reset at each new segment (a restarted recording), like the link does after a
reconnect; ``--driver`` must match the driver the capture names (exit 2 otherwise), and
a damaged capture exits 2 naming the byte offset.
May import: chairside.drivers, chairside.domain, chairside.transport.capture (reading
captures), chairside.commands._common (UsageError).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from chairside.commands._common import DRIVERS, UsageError
from chairside.domain.readings import DeviceStatus, Reading
from chairside.drivers import Driver, get_driver
from chairside.transport.capture import CaptureError, CaptureReader, is_capture

CHUNK = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver", required=True, choices=DRIVERS, help="the device protocol of the bytes")
    parser.add_argument("file", metavar="FILE", help="raw capture to decode, or - for standard input")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--text", dest="text", action="store_true", default=None,
                      help="the file shows the bytes as text (vector files): drop # comment lines, "
                           "hl7: line -> segment + CR; masimo: line + CR LF; ge-s5: 'hex:' lines (default for *.txt)")
    mode.add_argument("--raw", dest="text", action="store_false", help="the file holds the wire bytes (default)")
    parser.add_argument("--status", action="store_true",
                        help="also print device-status records (probe off, device alarms, module absent)")


def text_to_wire(driver: str, text: str) -> bytes:
    """The wire bytes a vector text file stands for (see the module docstring)."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    if driver == "hl7":
        segs = [ln.rstrip() for ln in lines if ln.strip()]
        return "".join(s + "\r" for s in segs).encode("utf-8")
    if driver == "masimo":
        out = []
        for ln in lines:
            ln = ln.replace("<CR><LF>", "").rstrip()
            if ln:
                out.append(ln + "\r\n")
        return "".join(out).encode("ascii", errors="replace")
    if driver == "ge-s5":
        data = bytearray()
        for n, ln in enumerate(lines, 1):
            head, sep, rest = ln.partition(":")
            if sep and head.strip().lower() == "hex":
                try:
                    data += bytes.fromhex(rest)
                except ValueError as exc:
                    raise ValueError(f"bad hex on line {n}: {exc}") from None
        return bytes(data)
    raise ValueError(f"no text mode for driver {driver!r}")


def _iso(r: Reading | DeviceStatus) -> str | None:
    t = r.device_time or r.receive_time
    return t.isoformat() if t is not None else None


def reading_json(r: Reading) -> dict:
    obj: dict = {"t": _iso(r), "param": r.param, "value": r.value, "unit": r.unit, "valid": r.valid,
                 "flags": list(r.flags)}
    if r.param == "pr":
        obj["source"] = r.source
    return obj


def status_json(s: DeviceStatus) -> dict:
    obj: dict = {"t": _iso(s), "status": s.kind, "active": s.active, "param": s.param, "detail": s.detail,
                 "flags": list(s.flags)}
    if s.priority is not None:
        obj["priority"] = s.priority
    if s.value is not None:
        obj["value"] = s.value
    return obj


def _decode_capture(path: str, driver_name: str, driver: Driver, emit: Callable[[list], None]) -> None:
    segment = None
    for rec in CaptureReader(path):
        if rec.segment is not segment:
            if rec.segment.driver and rec.segment.driver != driver_name:
                raise UsageError(f"{path}: a raw capture of a {rec.segment.driver} monitor (segment at byte "
                                 f"{rec.segment.offset}), not {driver_name}: use --driver {rec.segment.driver}")
            if segment is not None:
                driver.reset()
            segment = rec.segment
        got = driver.feed(rec.data)
        emit([x if x.receive_time is not None else x.model_copy(update={"receive_time": rec.receive_time})
              for x in got])


def run(args: argparse.Namespace) -> int:
    driver = get_driver(args.driver)
    text = args.text if args.text is not None else (args.file != "-" and args.file.lower().endswith(".txt"))
    out = sys.stdout
    n_readings = n_status = 0

    def emit(items: list) -> None:
        nonlocal n_readings, n_status
        lines = []
        for item in items:
            if isinstance(item, Reading):
                n_readings += 1
                lines.append(json.dumps(reading_json(item)))
            elif args.status:
                n_status += 1
                lines.append(json.dumps(status_json(item)))
            else:
                n_status += 1
        if lines:
            out.write("\n".join(lines) + "\n")

    name = "standard input" if args.file == "-" else args.file
    try:
        if args.file != "-" and args.text is None and is_capture(args.file):
            try:
                _decode_capture(args.file, args.driver, driver, emit)
            except CaptureError as exc:
                raise UsageError(str(exc)) from None
        elif text:
            raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
            try:
                wire = text_to_wire(args.driver, raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise UsageError(f"{name}: not UTF-8 text at byte offset {exc.start} (use --raw for wire bytes)") from None
            except ValueError as exc:
                raise UsageError(f"{name}: {exc}") from None
            for i in range(0, len(wire), CHUNK):
                emit(driver.feed(wire[i:i + CHUNK]))
        else:
            stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
            try:
                while chunk := stream.read(CHUNK):
                    emit(driver.feed(chunk))
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
    except BrokenPipeError:
        raise  # the reader of stdout went away (| head): not a bad input
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    flush = getattr(driver, "flush", None)
    if flush is not None:
        emit(flush())
    out.flush()
    st = driver.stats
    print(f"decode: {st.frames_decoded} frames decoded, {st.frames_rejected} frames rejected, "
          f"{st.bytes_skipped} bytes skipped ({n_readings} readings, {n_status} status records)",
          file=sys.stderr)
    return 0
