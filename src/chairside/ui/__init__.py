"""The Textual console: screens, widgets and styles. The only package that imports textual.

May import: chairside.service, chairside.domain (and textual, rich). Must not be imported
by any other chairside package.
"""
