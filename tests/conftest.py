"""Shared test fixtures: where the repository and ../shared are."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Tests never write to the user's own folders: the diagnostic log and the session folder go
# to a temporary folder (inherited by the subprocesses the tests start), and no user config
# file is read.
_SCRATCH = Path(tempfile.mkdtemp(prefix="chairside-tests-"))
os.environ.setdefault("CHAIRSIDE_LOG_DIR", str(_SCRATCH / "log"))
for _var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
    os.environ[_var] = str(_SCRATCH / _var.lower())

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "vectors"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"../shared/vectors not found beside the repository (looked in {VECTORS})")
    return VECTORS

# Property tests draw the same examples on every run (a gate must not fail by chance);
# HYPOTHESIS_PROFILE=explore draws new ones, for looking for trouble by hand.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("chairside", derandomize=True, print_blob=True)
    _hyp_settings.register_profile("explore", derandomize=False, print_blob=True)
    _hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "chairside"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
