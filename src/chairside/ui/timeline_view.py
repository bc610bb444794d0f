"""The event timeline of the monitor screen: the latest entries, newest last.

Owns: ``TimelineView`` (time, the record's event number, author, text; alarm entries
marked and coloured by priority through component classes in .tcss; in a replay an entry
the record does not have shows "#-").
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from chairside.service.model import TimelineItem
from chairside.ui.format import fit_words


class TimelineView(Widget):
    COMPONENT_CLASSES = {"timeline--time", "timeline--high", "timeline--medium", "timeline--low",
                         "timeline--entry"}

    def __init__(self, **kwargs) -> None:
        super().__init__(id="timeline", **kwargs)
        self.border_title = "Events"
        self._items: tuple[TimelineItem, ...] = ()
        self._key: tuple | None = None

    def show(self, items: tuple[TimelineItem, ...]) -> None:
        key = (len(items), (items[-1].seq, items[-1].t, items[-1].replay_only) if items else None)
        self._items = items
        if key != self._key:
            self._key = key
            self.refresh()

    def render(self) -> Text:
        h = max(1, self.size.height)
        items = self._items[-h:]
        text = Text(no_wrap=True, overflow="ellipsis")
        if not items:
            text.append("no events yet", style=self.get_component_rich_style("timeline--time", partial=True))
            return text
        for i, it in enumerate(items):
            if i:
                text.append("\n")
            text.append(f"{it.t:%H:%M:%S} ", style=self.get_component_rich_style("timeline--time", partial=True))
            num = "#-   " if it.replay_only else f"#{it.seq:<4}"  # a replay's own entry: not in the record
            text.append(f"{num} {it.author:<3} ", style=self.get_component_rich_style("timeline--time", partial=True))
            name = f"timeline--{it.priority}" if it.priority else "timeline--entry"
            room = self.size.width - 19 if self.size.width else 200  # after time, #seq, author
            # a long entry ends at a word boundary with "…", never mid-word
            text.append(fit_words(it.text, room), style=self.get_component_rich_style(name, partial=True))
        return text
