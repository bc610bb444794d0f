"""The Textual console: screens, widgets and styles. The only package that imports textual.

Owns: ``create_app`` (re-exported from ``chairside.ui.app``). One screen or widget per
module; layout and colours in ``chairside.tcss``.
May import: chairside.service, chairside.domain (and textual, rich). Must not be imported
by any other chairside package (the commands import it lazily).
"""

from chairside.ui.app import ChairsideApp, create_app

__all__ = ["ChairsideApp", "create_app"]
