"""Files that carry patient data, written readable by their owner only (mode 0600).

Owns: ``write_private_text`` (the whole file at once: a temporary file beside the target,
created 0600 whatever the umask, synced, then renamed over it, so a reader never sees half
a report and a crash leaves the old one) and ``open_private_text`` (the same for a writer
that streams). Reports, exports and debriefs name a pseudonym and hold vitals, like the
session file they come from, which is 0600 for that reason. The owner can still print,
copy or share them deliberately.
May import: stdlib only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PRIVATE_MODE = 0o600


@contextmanager
def open_private_text(path: str | Path) -> Iterator[IO[str]]:
    """A text file to write ``path`` through; it appears (mode 0600) only once complete."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # whatever the umask was
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            fd = -1
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def write_private_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, mode 0600, all or nothing."""
    with open_private_text(path) as f:
        f.write(text)
