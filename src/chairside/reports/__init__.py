"""Reports of a session file: the printable HTML record, the FHIR bundle, the REMS form
fields, the trend chart (SVG) and the training debrief.

Owns: rendering only. A report reads its session with ``chairside.store.read_session``,
derives the session's state by folding its events (``chairside.domain.state.fold``), takes
limits from ``chairside.alarms.profile`` and scales from ``chairside.domain.scales``, and
words events with ``chairside.domain.describe``.
Must not import: textual, chairside.ui, chairside.service, chairside.transport.
"""
