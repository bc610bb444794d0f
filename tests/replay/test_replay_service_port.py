"""The read-only replay console is an explicit implementation of the console's port: every
member of ``ConsoleService`` is written out in ``ReplayService`` itself (none is left to the
protocol's empty stub or to attribute forwarding), and every command is refused."""

from __future__ import annotations

import inspect

import pytest

from chairside.replay import ReplayService
from chairside.service.model import CommandRefused
from chairside.service.ports import ConsoleService

QUERIES = {"template", "protocol_name", "phase", "audio_pause_s", "subscribe", "snapshot", "gate_check",
           "dose_preview", "discharge_check", "amendable_events", "event", "start_check", "resume_check",
           "device_doses"}


def _members() -> set[str]:
    return {n for n, v in vars(ConsoleService).items()
            if not n.startswith("_") and (callable(v) or isinstance(v, property))}


def test_every_port_member_is_its_own():
    missing = {n for n in _members() if n not in vars(ReplayService)}
    assert not missing, missing
    assert not hasattr(ReplayService, "__getattr__") or "__getattr__" not in vars(ReplayService)


def test_signatures_match_the_port():
    for name in _members():
        mine, port = vars(ReplayService)[name], vars(ConsoleService)[name]
        if isinstance(port, property):
            assert isinstance(mine, property), name
            continue
        assert list(inspect.signature(mine).parameters) == list(inspect.signature(port).parameters), name


@pytest.mark.parametrize("name", sorted(_members() - QUERIES))
def test_every_command_is_refused(name):
    svc = ReplayService.__new__(ReplayService)  # no player needed: a command never reaches one
    fn = getattr(svc, name)
    params = inspect.signature(fn).parameters
    kwargs = {p: "x" for p, v in params.items() if v.default is inspect.Parameter.empty
              and v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)}
    with pytest.raises(CommandRefused, match="replay"):
        fn(**kwargs)
