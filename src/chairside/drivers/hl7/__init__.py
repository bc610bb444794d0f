"""HL7 v2 observation driver (IHE PCD-01 ORU^R01, PCD-04 ORU^R40 alarms): sans-I/O.

Owns (by module): ``driver`` (``Hl7Driver``: MLLP-framed or plain CR/LF-separated messages
-> readings and device alarms, the message checks, ACKs for MLLP senders),
``observations`` (what an OBX and an R40 alarm group mean: MDC codes, units, sentinels,
OBX-11/OBX-8 status), ``syntax`` (delimiters, escape sequences, timestamps, the MSH
header, Table 0357), ``ack`` (the ACK message and when it is sent), ``encode``
(``encode_oru_r01``: one PCD-01 message, for the simulator).
Must not import: serial, sockets, threads, clocks, textual, any chairside package other
than ``chairside.domain`` and ``chairside.drivers``.
"""

from __future__ import annotations

from chairside.drivers.hl7.driver import Hl7Driver
from chairside.drivers.hl7.encode import encode_oru_r01
from chairside.drivers.hl7.observations import CODES
from chairside.drivers.hl7.syntax import parse_ts, unescape

__all__ = ["CODES", "Hl7Driver", "encode_oru_r01", "parse_ts", "unescape"]
