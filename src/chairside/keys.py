"""The installation's signing key and the keys this installation trusts.

Owns: where the keys live (``Settings.key_dir``, by default ``<user config folder>/chairside/keys``
from platformdirs), creating the installation's Ed25519 key on first use (mode 0600 in a
0700 folder; two processes starting at once end up with the same key), loading it, the
trusted keys folder (``<key_dir>/trusted/*.pem``: public keys of other installations whose
session files this one accepts), exporting the public key and importing another's.
May import: stdlib, ``cryptography`` (through :mod:`chairside.store.signing`),
:mod:`chairside.settings`. Must not import: textual, serial, the service, the UI.

What a signature does and does not prove is said in the README ("Signed session files").
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from chairside.store.signing import KeyFormatError, Signer, fingerprint, public_from_pem, public_to_pem

log = logging.getLogger("chairside.keys")

PRIVATE_NAME = "installation.key"
TRUSTED_DIR = "trusted"
_cache: dict[str, Signer] = {}
_cache_lock = threading.Lock()


class KeysError(Exception):
    """A key cannot be created, read or used; the message is one line naming the file."""


@dataclass(frozen=True)
class KnownKey:
    """A public key this installation trusts, and why (``source``)."""

    fingerprint: str
    public_raw: bytes
    source: str  # "this installation", "trusted: <file>", "--key <file>"


def key_dir() -> Path:
    """The folder of the installation key (from the settings: ``CHAIRSIDE_KEY_DIR``, the
    config file's ``key_dir``, or the user's config folder)."""
    from chairside.settings import SettingsError, load_settings

    try:
        return load_settings().key_dir
    except SettingsError as exc:
        raise KeysError(f"cannot locate the signing key: {exc}") from None


def private_key_path(folder: Path | None = None) -> Path:
    return (folder or key_dir()) / PRIVATE_NAME


def trusted_dir(folder: Path | None = None) -> Path:
    return (folder or key_dir()) / TRUSTED_DIR


def installation_signer(folder: Path | None = None, *, create: bool = True) -> Signer:
    """The installation's signing key, created (0600) on first use when ``create``.

    Raises :class:`KeysError` (one line) when it cannot be created or read; a corrupt key
    file is never replaced (files it signed name its fingerprint)."""
    path = private_key_path(folder)
    key = str(path)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and path.is_file():
            return cached
        signer = _load(path) if path.exists() else None
        if signer is None:
            if not create:
                raise KeysError(f"{path}: no signing key yet (it is created when the first session is recorded)")
            signer = _create(path)
        _cache[key] = signer
        return signer


def _load(path: Path) -> Signer:
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise KeysError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    if st.st_mode & 0o077:
        log.warning("%s: the signing key is readable by others (mode %o); run chmod 600 on it",
                    path, st.st_mode & 0o777)
    try:
        return Signer.from_pem(data, str(path))
    except KeyFormatError as exc:
        raise KeysError(f"{exc}; it is not replaced (move it away to start a new key)") from None


def _create(path: Path) -> Signer:
    signer = Signer.generate(str(path))
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask was
            os.write(fd, signer.private_pem())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces: another process may have won the race
        except FileExistsError:
            return _load(path)
        finally:
            tmp.unlink(missing_ok=True)
        try:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except OSError as exc:
        raise KeysError(f"{path}: cannot create the signing key ({exc.strerror})") from None
    log.info("created the installation signing key %s (%s)", path, signer.fingerprint)
    return Signer(signer._key, signer.public_raw, str(path))


def read_public(path: Path) -> bytes:
    """The raw public key in a PEM file (a public key, or a private key whose public half is
    wanted). Raises :class:`KeysError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeysError(f"{path}: cannot read ({exc.strerror})") from None
    if b"PRIVATE KEY" in data:
        try:
            return Signer.from_pem(data, str(path)).public_raw
        except KeyFormatError as exc:
            raise KeysError(str(exc)) from None
    try:
        return public_from_pem(data, str(path))
    except KeyFormatError as exc:
        raise KeysError(str(exc)) from None


def trusted_keys(extra: list[Path] | None = None, folder: Path | None = None) -> dict[str, KnownKey]:
    """Fingerprint -> key for every key this installation accepts: its own (if it has one),
    the PEM files in the trusted folder, and ``extra`` files (``verify --key``)."""
    out: dict[str, KnownKey] = {}
    try:
        own = installation_signer(folder, create=False)
    except KeysError:
        own = None
    if own is not None:
        out[own.fingerprint] = KnownKey(own.fingerprint, own.public_raw, "this installation")
    tdir = trusted_dir(folder)
    if tdir.is_dir():
        for p in sorted(tdir.iterdir()):
            if p.suffix not in (".pem", ".pub") or not p.is_file():
                continue
            try:
                raw = read_public(p)
            except KeysError as exc:
                log.warning("trusted key ignored: %s", exc)
                continue
            out.setdefault(fingerprint(raw), KnownKey(fingerprint(raw), raw, f"trusted: {p}"))
    for p in extra or []:
        raw = read_public(Path(p))
        out.setdefault(fingerprint(raw), KnownKey(fingerprint(raw), raw, f"--key {p}"))
    return out


def export_public(signer: Signer) -> bytes:
    """The PEM public key to hand to another machine (``chairside keys --export``)."""
    return public_to_pem(signer.public_raw)


def trust(path: Path, folder: Path | None = None) -> tuple[KnownKey, Path]:
    """Copy another installation's public key into the trusted folder; returns it and where."""
    raw = read_public(path)
    fp = fingerprint(raw)
    tdir = trusted_dir(folder)
    name = fp.split(":", 1)[1].replace("/", "_").replace("+", "-")[:16] + ".pem"
    dest = tdir / name
    try:
        tdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        dest.write_bytes(public_to_pem(raw))
    except OSError as exc:
        raise KeysError(f"{dest}: cannot write ({exc.strerror})") from None
    return KnownKey(fp, raw, f"trusted: {dest}"), dest
