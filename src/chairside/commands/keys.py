"""``chairside keys [--export FILE|-] [--trust FILE] [--json]``: the installation's signing key.

Owns: showing the installation key's fingerprint and file (creating the key if this
installation has none yet, as the first recording would), the trusted keys, exporting the
public key (PEM) for another machine's ``verify --key`` or ``keys --trust``, and trusting
another installation's exported key. Exit 2 with one line when a key file cannot be
created, read or written. The private key never leaves its file through this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chairside.commands._common import UsageError
from chairside.keys import KeysError, export_public, installation_signer, private_key_path, trust, trusted_keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--export", metavar="FILE", help="write the public key (PEM) to FILE ('-' = stdout)")
    parser.add_argument("--trust", metavar="FILE", type=Path,
                        help="trust another installation's public key (its `keys --export` file)")
    parser.add_argument("--json", action="store_true", help="print the keys as one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        if args.trust is not None:
            known, dest = trust(args.trust)
            print(f"trusted {known.fingerprint} (saved as {dest})", file=sys.stderr)
        signer = installation_signer()
        path = private_key_path()
        trusted = trusted_keys()
    except KeysError as exc:
        raise UsageError(str(exc)) from None
    if args.export is not None:
        pem = export_public(signer)
        if args.export == "-":
            sys.stdout.write(pem.decode("ascii"))
            sys.stdout.flush()
            return 0
        out = Path(args.export)
        if out.is_dir():
            raise UsageError(f"--export {out}: is a folder; name a file")
        try:
            out.write_bytes(pem)
        except OSError as exc:
            raise UsageError(f"--export {out}: cannot write ({exc.strerror})") from None
        print(f"wrote the public key {signer.fingerprint} to {out}", file=sys.stderr)
        return 0
    others = [k for k in trusted.values() if k.fingerprint != signer.fingerprint]
    if args.json:
        print(json.dumps({
            "fingerprint": signer.fingerprint, "algorithm": "ed25519", "private_key_file": str(path),
            "trusted": [{"fingerprint": k.fingerprint, "source": k.source} for k in others],
        }, sort_keys=True))
        return 0
    print(f"fingerprint: {signer.fingerprint}")
    print("algorithm:   ed25519")
    print(f"key file:    {path} (private: keep it 0600, never copy it)")
    if others:
        print("trusted:")
        for k in others:
            print(f"  {k.fingerprint}  {k.source}")
    else:
        print("trusted:     (no other installation's key; add one with --trust FILE)")
    return 0
