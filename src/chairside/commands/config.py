"""``chairside config``: print each effective setting and where its value came from.

Owns: the output of ``config`` (one ``name = value  (origin)`` line per setting, origin
``default``, the config file's path, or ``env CHAIRSIDE_<NAME>``; ``--json`` for scripts;
``--path`` prints only the config file location). A bad config file or environment value
exits 2 with one line naming the file or variable and the key.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chairside.commands._common import UsageError
from chairside.settings import SettingsError, config_path, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object: name -> {value, origin}")
    parser.add_argument("--path", action="store_true", help="print only the config file's path")


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    return str(value)


def run(args: argparse.Namespace) -> int:
    path, named = config_path()
    if args.path:
        print(path)
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    origins = settings.origins
    if args.json:
        out = {name: {"value": (str(v) if isinstance(v, Path) else v), "origin": origins[name]}
               for name, v in settings.model_dump().items()}
        print(json.dumps(out, sort_keys=True))
        return 0
    state = "present" if path.is_file() else "not present"
    how = " (from CHAIRSIDE_CONFIG)" if named else ""
    print(f"# config file: {path}{how} ({state})")
    width = max(len(n) for n in type(settings).model_fields)
    for name, value in settings.model_dump().items():
        shown = _show(value)
        if name == "port" and value is None:
            shown = "(none: the built-in simulated monitor)"
        print(f"{name:<{width}} = {shown}  ({origins[name]})")
    return 0
