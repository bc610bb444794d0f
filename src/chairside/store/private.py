"""Files that carry patient data, written readable by their owner only (mode 0600).

Owns: ``write_private_text`` (the whole file at once: a temporary file beside the target,
created 0600 whatever the umask, synced, then renamed over it, so a reader never sees half
a report and a crash leaves the old one), ``open_private_text`` / ``open_private_bytes``
(the same for a writer that streams), and what an output path may be. Reports, exports and
debriefs name a pseudonym and hold vitals, like the session file they come from, which is
0600 for that reason. The owner can still print, copy or share them deliberately.
May import: stdlib only.

What the output path may be (checked before anything is written):

- missing, or a regular file: written beside it and renamed over it (0600, all or nothing);
- a character or block device, or a FIFO (``/dev/stdout``, ``/dev/null``, a named pipe a
  reader waits on): written *in place*: never replaced by a regular file, its mode left
  alone; a write error there (``/dev/full``) is an ``OSError`` like any other;
- a symbolic link: refused (:class:`OutputRefused`). Following it would write patient data
  wherever the link points (a link planted in a shared folder can aim at a file the user
  never meant to overwrite, or at a world-readable place), and replacing it would silently
  turn the link into a file. Naming the target itself is one step for the user; undoing a
  write through a link is not possible;
- a folder, a socket, anything else: refused.

:class:`OutputRefused` (a ``ValueError``: bad input, exit 2 on the command line) also covers
a target that cannot be created at all (no such folder, no permission, read-only file
system). An ``OSError`` raised while writing (a full disk, an I/O error) is a failed write
(exit 1): the earlier file of that name, if any, is left as it was.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PRIVATE_MODE = 0o600

# the target cannot be created here at all: bad input, not a failed write
_CANNOT_CREATE = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EROFS, errno.EISDIR,
                  errno.ENAMETOOLONG, errno.ELOOP, errno.ENXIO}


class OutputRefused(ValueError):
    """The output path is not something an export may write to; one line naming it and why."""


def output_kind(path: str | Path) -> str:
    """``"new"``, ``"file"`` or ``"in-place"`` (a device or FIFO); :class:`OutputRefused`
    for a symbolic link, a folder, a socket or anything else."""
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        parent = target.parent
        if not parent.is_dir():
            raise OutputRefused(f"{target}: the folder {parent} does not exist") from None
        return "new"
    except OSError as exc:
        raise OutputRefused(f"{target}: cannot use it ({exc.strerror})") from None
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        try:
            dest = os.readlink(target)
        except OSError:
            dest = "?"
        raise OutputRefused(f"{target}: is a symbolic link (to {dest}); name the file itself "
                            "(output is never written through a link)")
    if stat.S_ISDIR(mode):
        raise OutputRefused(f"{target}: is a folder; name a file")
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        return "in-place"
    raise OutputRefused(f"{target}: is a socket or other special file, not something to write a file to")


@contextmanager
def _open_private(path: str | Path, binary: bool) -> Iterator[IO[Any]]:
    target = Path(path)
    kind = output_kind(target)
    if kind == "in-place":
        with _open_in_place(target, binary) as f:
            yield f
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), PRIVATE_MODE)
    except OSError as exc:
        if exc.errno in _CANNOT_CREATE:
            raise OutputRefused(f"{target}: cannot create it ({exc.strerror})") from None
        raise
    try:
        os.fchmod(fd, PRIVATE_MODE)  # whatever the umask was
        f = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with f:
            fd = -1
            yield f
            f.flush()
            os.fsync(f.fileno())
        if os.path.islink(target):  # became a link while we wrote: still never replace one
            raise OutputRefused(f"{target}: became a symbolic link while it was written; nothing replaced")
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


@contextmanager
def _open_in_place(target: Path, binary: bool) -> Iterator[IO[Any]]:
    """A device or FIFO: opened for writing as it is (no create, no truncate, no chmod)."""
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        if exc.errno in _CANNOT_CREATE:
            raise OutputRefused(f"{target}: cannot open it for writing ({exc.strerror})") from None
        raise
    st = os.fstat(fd)
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        os.close(fd)
        raise OutputRefused(f"{target}: changed while it was opened; nothing written")
    f = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
    with f:
        yield f
        f.flush()  # a full device says so here (ENOSPC), not silently at close


@contextmanager
def open_private_text(path: str | Path) -> Iterator[IO[str]]:
    """A text file to write ``path`` through; it appears (mode 0600) only once complete.
    A device or FIFO is written in place; see the module docstring for what is refused."""
    with _open_private(path, binary=False) as f:
        yield f


@contextmanager
def open_private_bytes(path: str | Path) -> Iterator[IO[bytes]]:
    """As :func:`open_private_text`, for bytes."""
    with _open_private(path, binary=True) as f:
        yield f


def write_private_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, mode 0600, all or nothing."""
    with open_private_text(path) as f:
        f.write(text)
