"""Signatures over a session file's chain head: the message, the key forms, the checks.

Owns: what exactly is signed (:func:`head_message`), the public-key fingerprint
(:func:`fingerprint`), the PEM forms of keys, :class:`Signer` (a private key that signs
heads) and :func:`check` (one signature against one public key). Key *files* (where the
installation key lives, the trusted keys folder) belong to :mod:`chairside.keys`.
May import: stdlib and ``cryptography``. Must not import: textual, serial, any other
chairside package.

Why. The hash chain proves order and that nothing changed *relative to a head hash*; it
has no secret, so whoever can write the file can edit an event, recompute every hash and
the head, and the chain verifies again. Each commit group is therefore signed with the
installation's Ed25519 key: the signature covers the head after the commit, and through
the chain every event up to it. Re-chaining after an edit changes the head of every later
commit, and no signature made before the edit matches any more.

Signed message (bytes, for anyone re-implementing the check)::

    b"chairside-session-head/1\\x00" + seq as 8 bytes big-endian + bytes.fromhex(hash)

where ``seq`` is the last event of the commit group and ``hash`` its chain hash.

Fingerprint: ``SHA256:`` + unpadded base64 of sha256 over the raw 32-byte public key
(the form OpenSSH prints, so it can be read out over the phone and compared).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache

ALGORITHM = "ed25519"
MESSAGE_PREFIX = b"chairside-session-head/1\x00"


class KeyFormatError(ValueError):
    """A key file or key bytes that are not an Ed25519 key in the expected form."""


def head_message(seq: int, head_hash: str) -> bytes:
    """The bytes signed for the head ``(seq, hash)`` (see the module docstring)."""
    return MESSAGE_PREFIX + int(seq).to_bytes(8, "big") + bytes.fromhex(head_hash)


def fingerprint(public_raw: bytes) -> str:
    """``SHA256:<base64>`` of a raw 32-byte Ed25519 public key."""
    digest = hashlib.sha256(public_raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def public_from_pem(data: bytes, where: str = "key") -> bytes:
    """The raw 32 bytes of an Ed25519 public key in PEM (SubjectPublicKeyInfo) form."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"{where}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(f"{where}: a {type(key).__name__}, not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_to_pem(public_raw: bytes) -> bytes:
    """The PEM (SubjectPublicKeyInfo) form of a raw Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(public_raw)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, eq=False)
class Signer:
    """A private Ed25519 key that signs chain heads. ``source`` says where it came from."""

    _key: object
    public_raw: bytes
    source: str = ""

    @classmethod
    def generate(cls, source: str = "generated") -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls._wrap(Ed25519PrivateKey.generate(), source)

    @classmethod
    def from_pem(cls, data: bytes, source: str = "key") -> Signer:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"{source}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(f"{source}: a {type(key).__name__}, not an Ed25519 private key")
        return cls._wrap(key, source)

    @classmethod
    def _wrap(cls, key: object, source: str) -> Signer:
        from cryptography.hazmat.primitives import serialization

        raw = key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(key, raw, source)

    def private_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)

    def sign_head(self, seq: int, head_hash: str) -> bytes:
        return self._key.sign(head_message(seq, head_hash))  # type: ignore[attr-defined]


@lru_cache(maxsize=32)
def _public_key(public_raw: bytes) -> object:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(public_raw)


def check(public_raw: bytes, signature: bytes, seq: int, head_hash: str) -> bool:
    """True when ``signature`` is ``public_raw``'s signature of the head ``(seq, hash)``."""
    from cryptography.exceptions import InvalidSignature

    try:
        key = _public_key(bytes(public_raw))
        key.verify(bytes(signature), head_message(seq, head_hash))  # type: ignore[attr-defined]
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
