"""Transport: the I/O shell around the drivers. Ports opened only through
``serial.serial_for_url``; read loop, reconnect with backoff, technical link events,
HL7 TCP listener, raw-capture tee and replay source.

May import: chairside.drivers, chairside.domain, serial, stdlib. Must not import:
textual, chairside.store, chairside.alarms, chairside.service.
"""
