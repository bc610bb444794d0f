"""The ``--broker URL --chair NAME [--clinic NAME]`` options of ``run`` and ``record``.

Owns: ``add_publish_arguments`` and ``publisher_for`` (a started ``ChairPublisher``, or None).
paho-mqtt is imported only when ``--broker`` is given (the console's start-up does not pay
for it). Must not import: textual.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BrokerOptionError", "add_publish_arguments", "publisher_for"]


class BrokerOptionError(ValueError):
    """Bad --broker / --chair options (the message says which)."""


def add_publish_arguments(parser: Any) -> None:
    """``--broker URL --chair NAME [--clinic NAME]`` of ``run`` and ``record``."""
    parser.add_argument("--broker", metavar="URL", help="publish this chair to the clinic board's MQTT broker")
    parser.add_argument("--chair", metavar="NAME", help="this chair's name on the board (with --broker)")
    parser.add_argument("--clinic", default="clinic", help="the clinic's name in the topics (default clinic)")


def publisher_for(args: Any, service: Any) -> Any:
    """The chair's publisher for ``--broker`` (started), or None; BrokerError on bad options."""
    url = getattr(args, "broker", None)
    if not url:
        if getattr(args, "chair", None):
            raise BrokerOptionError("--chair names this chair on the board: give --broker URL too")
        return None
    chair = (getattr(args, "chair", None) or "").strip()
    if not chair or any(c in chair for c in "/+#"):
        raise BrokerOptionError("--broker needs --chair NAME (a word without '/', '+' or '#')")
    from chairside.board.mqtt import BrokerError, ChairPublisher, parse_broker  # paho: only with --broker

    try:
        cfg = parse_broker(url)
    except BrokerError as exc:
        raise BrokerOptionError(str(exc)) from None
    pub = ChairPublisher(service, cfg, clinic=args.clinic, chair=chair)
    pub.start()
    return pub
