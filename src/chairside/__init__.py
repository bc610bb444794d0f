"""Chairside: a terminal console for the chair where a patient receives a ketamine infusion.

Owns: the package version. Must not import textual (only ``chairside.ui`` may).
"""

__version__ = "0.1.0"
