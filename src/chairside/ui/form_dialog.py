"""A keyboard-first form dialog that runs one service command in a worker thread.

Owns: ``Field`` (one form field: text, number, integer, select, checkbox), ``FormDialog``
(a ``ModalScreen`` built from fields; Tab moves, Enter or ctrl+s submits, Escape cancels;
optional two-step confirmation showing a summary; the command runs in a thread worker so
the UI thread never waits on the session file; a refusal is shown in the dialog, and a
``GateBlocked`` / ``DischargeBlocked`` reveals the override-reason field), and
``parse_number``.
Subclasses give ``FIELDS``/``fields()``, ``title`` and ``command(values)``.
Must not import: chairside.store, chairside.transport.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.content import Content
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual import events
from textual.widgets import Button, Input, Label, Select, Static

from textual.worker import Worker, WorkerState

from chairside.ui.overlay import BelowAlarms
from chairside.ui.tick_box import TickBox

from chairside.service.model import CommandRefused, DischargeBlocked, GateBlocked
from chairside.service.ports import ConsoleService


class FormError(ValueError):
    """A field's input cannot be used (shown in the dialog)."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text, number, int, select, checkbox
    options: Sequence[tuple[str, Any]] = ()
    default: Any = None
    required: bool = False
    placeholder: str = ""
    hidden: bool = False  # shown only when revealed (override reasons)
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_number(text: str, what: str, *, integer: bool = False, required: bool = False) -> float | int | None:
    t = (text or "").strip().replace(",", ".")
    if not t:
        if required:
            raise FormError(f"{what}: required")
        return None
    try:
        v = int(t) if integer else float(t)
    except ValueError:
        raise FormError(f"{what}: {t!r} is not a {'whole ' if integer else ''}number") from None
    if not math.isfinite(v):
        raise FormError(f"{what}: must be a finite number")
    return v


#: what separates the fields of one paste or one scanner burst
FIELD_SEPARATORS = ("\t", "\r\n", "\n", "\r")


class FieldInput(Input):
    """A form's text/number field. A paste (or a scanner's burst delivered as a paste) that
    holds tabs or line breaks fills this field and the next ones, one part each, as typing
    the same keys would; Textual's own Input keeps only the first line (and a number field
    refused the whole paste)."""

    def _on_paste(self, event: events.Paste) -> None:
        text = event.text or ""
        for sep in FIELD_SEPARATORS[1:]:
            text = text.replace(sep, "\t")
        if "\t" not in text:
            super()._on_paste(event)
            return
        event.stop()
        parts = text.split("\t")
        target: Any = self
        for i, part in enumerate(parts):
            if i:
                screen = self.screen
                screen.focus_next()
                target = screen.focused
                if not isinstance(target, Input):
                    break
            if part:
                target.insert_text_at_cursor(part)


class FormDialog(BelowAlarms):
    """Base class of the console's forms (below the alarm bar and the tiles: ``BelowAlarms``).

    Tab and shift+tab are priority keys: the app moves the focus when it reads the key, so
    the keys after a Tab in one burst (a scanner, a paste, a fast typist) land in the next
    field; as ordinary bindings the move waited for the key to bubble up from the field, and
    the keys behind it were already on their way into the old field ("1", Tab, "50" gave 150).
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("ctrl+s", "submit", "Record", show=True, priority=True),
        Binding("tab", "focus_field(1)", "Next", show=False, priority=True),
        Binding("shift+tab", "focus_field(-1)", "Previous", show=False, priority=True),
    ]
    dialog_title: str = "Form"
    submit_label: str = "Record"
    confirm_first: bool = False  # two-step: show summary, then confirm
    FIELDS: Sequence[Field] = ()
    command_name: str = "command"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._confirming = False
        self._busy = False
        self._revealed: set[str] = set()

    # -- to override -------------------------------------------------------------------
    def fields(self) -> Sequence[Field]:
        return self.FIELDS

    def command(self, values: dict[str, Any]) -> Any:  # runs in a worker thread
        raise NotImplementedError

    def summary(self, values: dict[str, Any]) -> str:
        return ""

    def intro(self) -> str:
        return ""

    def done_message(self, result: Any) -> str:
        return f"{self.dialog_title}: recorded"

    # -- building ----------------------------------------------------------------------
    @property
    def service(self) -> ConsoleService:
        return self.app.service  # type: ignore[attr-defined]

    @property
    def snap(self) -> Any:
        """The latest snapshot the app rendered (no call into the service's lock)."""
        snap = getattr(self.app, "snapshot", None)
        return snap if snap is not None else self.service.snapshot()

    @property
    def user(self) -> str:
        return getattr(self.app, "default_initials", "") or ""

    def compose_panel(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label(self.dialog_title, id="dialog-title")
            intro = self.intro()
            if intro:
                yield Static(intro, id="dialog-intro", markup=False)
            with VerticalScroll(id="dialog-fields"):
                for f in self.fields():
                    yield from self._field(f)
            yield Static("", id="dialog-summary", markup=False)
            yield Static("", id="dialog-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(self.submit_label + " (ctrl+s)", id="submit", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def _field(self, f: Field) -> ComposeResult:
        row_classes = "field-row" + (" -hidden" if f.hidden else "")
        with Horizontal(classes=row_classes, id=f"row-{f.name}"):
            if f.kind == "checkbox":
                yield TickBox(Content(f.label), value=bool(f.default), id=f"f-{f.name}")
                return
            yield Label(f.label, classes="field-label", markup=False)
            if f.kind == "select":
                opts = [(str(label), value) for label, value in f.options]
                kw: dict[str, Any] = {}
                if f.default is not None:
                    kw["value"] = f.default
                yield Select(opts, id=f"f-{f.name}", allow_blank=f.default is None,
                             prompt=f.placeholder or "choose one", **kw)
            else:
                value = "" if f.default is None else str(f.default)
                itype = {"number": "number", "int": "integer"}.get(f.kind, "text")
                yield FieldInput(value=value, placeholder=f.placeholder, id=f"f-{f.name}", type=itype)

    first_focus: str | None = None  # the field focused on opening (default: the first shown)

    def on_mount(self) -> None:  # (Textual calls BelowAlarms.on_mount too)
        self._focus_first()  # now, not after a refresh: keys typed right after opening land here

    def action_focus_field(self, step: int) -> None:
        """Tab / shift+tab (priority keys, see the class docstring)."""
        if step > 0:
            self.focus_next()
        else:
            self.focus_previous()

    def _focus_first(self) -> None:
        """Focus where the nurse has to type: the first empty text/number/choice field, never
        the prefilled initials (typing a rate there used to replace the initials)."""
        names = [self.first_focus] if self.first_focus else self._focus_order()
        for name in names[:1]:
            try:
                # set_focus now (Widget.focus() defers it to the app's queue, behind the keys
                # already typed)
                self.set_focus(self.query_one(f"#f-{name}"))
            except Exception:  # noqa: BLE001
                pass

    def _focus_order(self) -> list[str]:
        shown = [f for f in self.fields() if not f.hidden]
        empty: list[str] = []
        for f in shown:
            if f.kind == "checkbox":
                continue
            try:
                v = self.query_one(f"#f-{f.name}").value  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001
                continue
            if v is Select.NULL or (isinstance(v, str) and not v.strip()):
                empty.append(f.name)
        rest = [f.name for f in shown if not (f.name == "author" and f.default)]
        return empty + rest + [f.name for f in shown]

    # -- values --------------------------------------------------------------------------
    def reveal(self, name: str) -> None:
        self._revealed.add(name)
        row = self.query_one(f"#row-{name}")
        row.remove_class("-hidden")
        self.query_one(f"#f-{name}").focus()

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields():
            w = self.query_one(f"#f-{f.name}")
            if f.kind == "checkbox":
                out[f.name] = bool(w.value)  # type: ignore[attr-defined]
            elif f.kind == "select":
                v = w.value  # type: ignore[attr-defined]
                out[f.name] = None if v is Select.NULL else v
                if f.required and out[f.name] is None:
                    raise FormError(f"{f.label}: choose one")
            else:
                text = w.value  # type: ignore[attr-defined]
                if f.kind in ("number", "int"):
                    required = f.required and (not f.hidden or f.name in self._revealed)
                    out[f.name] = parse_number(text, f.label, integer=f.kind == "int", required=required)
                else:
                    out[f.name] = text.strip()
                    if f.required and not out[f.name] and (not f.hidden or f.name in self._revealed):
                        raise FormError(f"{f.label}: required")
        return out

    def set_value(self, name: str, value: Any) -> None:
        w = self.query_one(f"#f-{name}")
        w.value = value  # type: ignore[attr-defined]

    # -- actions -------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        elif event.button.id == "cancel":
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        if not self._busy:
            self.dismiss(None)

    def show_error(self, text: str) -> None:
        self.query_one("#dialog-error", Static).update(text)

    def action_submit(self) -> None:
        if self._busy:
            return
        try:
            values = self.values()
            summary = self.summary(values)
        except (FormError, CommandRefused) as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        if self.confirm_first and not self._confirming:
            self._confirming = True
            self.query_one("#dialog-summary", Static).update(
                (summary + "\n" if summary else "") + "Check, then press ctrl+s again to confirm.")
            self.query_one("#submit", Button).label = "Confirm (ctrl+s)"
            return
        self._busy = True
        self.run_worker(lambda: self.command(values), thread=True, name=self.command_name,
                        group="form-command", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        w = event.worker
        if w.group != "form-command":
            return
        if w.state == WorkerState.SUCCESS:
            self._busy = False
            self.app.notify(self.done_message(w.result), timeout=4)
            self.dismiss(w.result)
        elif w.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._busy = False
            self._confirming = False
            self.query_one("#submit", Button).label = self.submit_label + " (ctrl+s)"
            self.query_one("#dialog-summary", Static).update("")
            err = w.error
            if isinstance(err, (GateBlocked, DischargeBlocked)):
                self.on_blocked(err)
            elif isinstance(err, (CommandRefused, FormError, ValueError)):
                self.show_error(f"Refused: {err}")
            else:
                from chairside.diagnostics import log_exception

                if err is not None:
                    log_exception(f"{self.command_name} failed", err)
                self.show_error(f"Error: {err!r} (written to the diagnostic log)")

    def on_blocked(self, err: CommandRefused) -> None:
        reasons = getattr(err, "reasons", ())
        self.show_error("BLOCKED:\n" + "\n".join(f"• {r}" for r in reasons)
                        + "\nTo proceed anyway, give the override reason and submit again.")
        for f in self.fields():
            if f.name.endswith("override_reason"):
                self.reveal(f.name)
