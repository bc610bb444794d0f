"""``chairside protocols``: list the protocol templates, or print one as JSON (``--show NAME``).

Owns: the output of that command. Imports ``chairside.domain.protocol`` only.
Must not import: textual.
"""

from __future__ import annotations

import argparse
import json
import sys

from chairside.commands._common import UsageError
from chairside.domain.protocol import ProtocolTemplate, TemplateError, list_templates, load_template


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", metavar="NAME", help="print one template (name or TOML path) as JSON")
    p.add_argument("--json", action="store_true", help="list the templates as JSON lines")


def _row(t: ProtocolTemplate) -> dict:
    return {
        "name": t.name,
        "title": t.title,
        "dosing": t.dosing.describe(),
        "min_recovery_min": t.recovery.min_minutes,
        "min_recovery_source": t.recovery.source("min_minutes"),
        "recovery_counted_from": t.recovery.counted_from,
        "limits_profile": t.limits_profile,
    }


def run(args: argparse.Namespace) -> int:
    try:
        if args.show:
            t = load_template(args.show)
            doc = t.model_dump(mode="json")
            doc["dosing"]["unit"] = t.dosing.unit
            json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
            return 0
        templates = list_templates()
    except TemplateError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        for t in templates:
            print(json.dumps(_row(t), ensure_ascii=False))
        return 0
    rows = [
        (t.name, t.title, t.dosing.describe(),
         f"{t.recovery.min_minutes:g} min {t.recovery.source('min_minutes')} from "
         + ("infusion end" if t.recovery.counted_from == "infusion_end" else "start/first dose"),
         t.limits_profile)
        for t in templates
    ]
    head = ("NAME", "TITLE", "DOSING", "MIN RECOVERY", "LIMITS")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0
