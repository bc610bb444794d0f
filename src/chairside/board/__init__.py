"""The clinic board: every chair on one screen (issue 18).

Owns: the chair-state payload and the board's model (``board.state``), the MQTT
publisher of a chair and the board's subscriber (``board.mqtt``), and the in-process
board of several chairs (``board.local``). Must not import: textual (the board's screen
is in chairside.ui).
"""
