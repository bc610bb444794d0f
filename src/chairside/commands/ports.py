"""``chairside ports``: list the serial ports of this machine and the port URL forms we accept.

Owns: the output of the ``ports`` command (a table on stdout; ``--json`` for scripts).
Imports the simulator (``simulators.api``) only to learn whether its ``sim://`` scheme is
available: it is not when the ``sim`` extra (numpy) is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys

import serial
from serial.tools import list_ports

URL_FORMS: list[tuple[str, str]] = [
    ("/dev/ttyUSB0, /dev/ttyS0, COM3", "a serial port of this machine (device path)"),
    ("socket://HOST:PORT", "raw TCP: a serial-to-Ethernet converter, or `chairside simulate --tcp PORT`"),
    ("rfc2217://HOST:PORT", "a remote serial port (RFC 2217), line settings forwarded"),
    ("loop://", "loopback: what is written is read back (tests)"),
    ("spy://PORT", "any port above, with its traffic logged to stderr (debugging)"),
    ("sim://SCENARIO?driver=ge-s5&seed=1&speed=1", "the built-in simulated monitor"),
    ("listen://127.0.0.1:2575", "HL7 over MLLP: listen for a monitor that connects to us"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per port on stdout")
    parser.add_argument("--include-links", action="store_true",
                        help="also list symbolic links to ports (e.g. /dev/serial/by-id/...)")


def _sim_available() -> bool:
    """True when ``sim://`` ports open: the simulator imports (numpy is installed) and its
    scheme is registered with pyserial."""
    try:
        from simulators import api as sim_api  # optional: numpy comes with the ``sim`` extra
    except ImportError:
        return False
    sim_api.register()
    try:
        serial.serial_for_url("sim://uneventful", do_not_open=True)
    except ValueError:  # pyserial: protocol 'sim' not known
        return False
    return True


def _ports(include_links: bool) -> list[dict[str, str]]:
    out = []
    for info in sorted(list_ports.comports(include_links=include_links), key=lambda p: p.device):
        out.append({
            "device": info.device,
            "description": "" if info.description in (None, "n/a") else str(info.description),
            "hwid": "" if info.hwid in (None, "n/a") else str(info.hwid),
            "manufacturer": info.manufacturer or "",
            "serial_number": info.serial_number or "",
        })
    return out


def run(args: argparse.Namespace) -> int:
    try:
        ports = _ports(args.include_links)
    except Exception as exc:  # noqa: BLE001 - enumeration is platform code; report, do not crash
        print(f"chairside ports: cannot list serial ports: {exc}", file=sys.stderr)
        ports = []
    if args.json:
        for p in ports:
            print(json.dumps(p))
        return 0
    if ports:
        width = max(len(p["device"]) for p in ports)
        print("Serial ports:")
        for p in ports:
            info = "  ".join(x for x in (p["description"], p["hwid"]) if x) or "(no hardware information)"
            print(f"  {p['device']:<{width}}  {info}")
    else:
        print("No serial ports found on this machine.")
    print()
    print("Port URLs accepted by --port:")
    sim = _sim_available()
    width = max(len(form) for form, _ in URL_FORMS)
    for form, what in URL_FORMS:
        note = "" if sim or not form.startswith("sim://") else " (not available in this build)"
        print(f"  {form:<{width}}  {what}{note}")
    return 0
