"""Simulated patient and monitor: physiology (PK, effect site, noise, artefacts),
scenario files, device emulators that produce protocol bytes through the drivers'
encoders, and the pty/TCP servers that stand in for a monitor.

May import: chairside.domain, chairside.drivers (encoders), numpy, stdlib.
Must not import: textual, chairside.ui, chairside.service, chairside.store.
The core (src/chairside) never imports this package except cli.py, which may start a
simulator as its embedded default source.
"""
