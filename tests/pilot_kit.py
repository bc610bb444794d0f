"""Helpers of the Pilot tests (the console driven by keys): wait for the workers, fill a
form field, submit a form (with its confirmation step)."""

from __future__ import annotations


async def settle(pilot):
    """Let the thread workers finish and the screen catch up (twice: a worker may start one)."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def set_field(screen, name, value):
    screen.query_one(f"#f-{name}").value = value


async def submit(pilot, confirm=True):
    """ctrl+s; with ``confirm``, ctrl+s again on the summary the form shows first."""
    await pilot.press("ctrl+s")
    await settle(pilot)
    if confirm:
        await pilot.press("ctrl+s")
        await settle(pilot)
