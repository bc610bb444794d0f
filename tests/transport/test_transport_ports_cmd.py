"""``chairside ports``: lists serial ports (pyserial's enumeration) and the accepted URL forms."""

from __future__ import annotations

import json

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from chairside.cli import main


def _port(device, description, hwid):
    info = ListPortInfo(device, skip_link_detection=True)
    info.description = description
    info.hwid = hwid
    return info


def test_no_ports_prints_a_clear_line(monkeypatch, capsys):
    monkeypatch.setattr(list_ports, "comports", lambda include_links=False: [])
    assert main(["ports"]) == 0
    out = capsys.readouterr().out
    assert "No serial ports found" in out
    for form in ("socket://", "loop://", "rfc2217://", "sim://", "listen://"):
        assert form in out


def test_ports_are_listed_with_their_hardware_info(monkeypatch, capsys):
    ports = [_port("/dev/ttyUSB0", "FT232R USB UART", "USB VID:PID=0403:6001 SER=A50285BI"),
             _port("/dev/ttyS0", "n/a", "n/a")]
    monkeypatch.setattr(list_ports, "comports", lambda include_links=False: ports)
    assert main(["ports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    usb = next(line for line in lines if "/dev/ttyUSB0" in line and "Serial" not in line)
    assert "FT232R USB UART" in usb and "0403:6001" in usb
    legacy = next(line for line in lines if line.strip().startswith("/dev/ttyS0"))
    assert "n/a" not in legacy and "no hardware information" in legacy
    assert [line.split()[0] for line in lines[1:3]] == ["/dev/ttyS0", "/dev/ttyUSB0"]


def test_ports_json(monkeypatch, capsys):
    ports = [_port("/dev/ttyUSB0", "FT232R USB UART", "USB VID:PID=0403:6001")]
    monkeypatch.setattr(list_ports, "comports", lambda include_links=False: ports)
    assert main(["ports", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [{"device": "/dev/ttyUSB0", "description": "FT232R USB UART", "hwid": "USB VID:PID=0403:6001",
                     "manufacturer": "", "serial_number": ""}]
