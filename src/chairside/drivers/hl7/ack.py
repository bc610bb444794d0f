"""HL7 acknowledgements: when an MLLP sender gets an ACK, and what it says.

Owns: ``wants_ack`` (the MSH-15 rule), ``ack_block`` (the MLLP-framed ``ACK`` message) and
``MAX_ERR``. The driver (``chairside.drivers.hl7.driver``) decides the code (AA/AE/AR) and
queues the block for ``take_output()``.
Must not import: anything outside stdlib and ``chairside.drivers.hl7.syntax`` (sans-I/O).

For a message (or a block) that came in an MLLP block, an MLLP-framed ``ACK`` with
``MSA|<code>|<control id>`` and one ``ERR`` per error (ERR-2 location, ERR-3
``code^text^HL70357``, ERR-4 ``E``, ERR-8 what was wrong) is queued for
``take_output()`` when MSH-15 is ``AL``, ``SU`` or empty (original mode), or ``ER`` and
the code is not AA; never for ``NE``. A block that is not HL7 always gets its ``AR`` (the
sender can log it). The ACK's MSH-7 repeats the message's (drivers have no clock).
The driver's ``acks`` counts the replies by code.
"""

from __future__ import annotations

from collections.abc import Iterable

from chairside.drivers.hl7.syntax import Message, escape

MAX_ERR = 8  # ERR segments in one ACK


def wants_ack(mode: bytes, code: str) -> bool:
    """Whether a message that came in an MLLP block with MSH-15 ``mode`` (accept
    acknowledgement type) gets an ACK of ``code``: ``AL``, ``SU`` or empty (original mode)
    always, ``ER`` only when something was wrong, ``NE`` never."""
    return mode in (b"AL", b"SU", b"") or (mode == b"ER" and code != "AA")


def ack_block(code: str, msg: Message | None, errors: Iterable[tuple[str, str, str, str]], *,
              receiving_app: bytes, receiving_facility: bytes) -> bytes:
    """An MLLP-framed ACK (HL7 v2.6 general acknowledgement, IHE PCD TF-2 B.2/B.3): MSA-1
    ``AA``/``AE``/``AR``, MSA-2 the message's control ID, one ERR per error (ERR-2 location,
    ERR-3 code^text^HL70357, ERR-4 severity E, ERR-8 what was wrong). Without a message
    (a block that is not HL7) the header is ours and MSA-2 empty."""
    if msg is not None:
        fs, cs, rs = msg.fs, msg.cs, msg.rs
        enc = msg.field(2) or b"^~\\&"
        esc = msg.esc
        header = [msg.field(5) or receiving_app, msg.field(6) or receiving_facility,
                  msg.field(3), msg.field(4), msg.field(7)]
        trigger, control = msg.trigger, msg.control
        processing, version = msg.field(11) or b"P", msg.field(12) or b"2.6"
        if msg.reject is not None and msg.reject[2] == "MSH^1^12":
            version = b"2.6"  # answer an unsupported version in ours
    else:
        fs, cs, rs, esc, enc = b"|", b"^", b"~", b"\\", b"^~\\&"
        header = [receiving_app, receiving_facility, b"", b"", b""]
        trigger, control, processing, version = b"", b"", b"P", b"2.6"
    msh = fs.join([b"MSH", enc, *header, b"", b"ACK" + cs + trigger + cs + b"ACK",
                   b"ACK" + control, processing, version])
    segs = [msh, fs.join([b"MSA", code.encode(), control])]
    for err_code, text, where, detail in errors:
        loc = cs.join(where.encode().split(b"^")) if where else b""
        segs.append(fs.join([b"ERR", b"", loc, cs.join([err_code.encode(), text.encode(), b"HL70357"]),
                             b"E", b"", b"", b"", escape(detail, fs, cs, rs, esc)]))
    return b"\x0b" + b"\r".join(segs) + b"\r\x1c\r"
