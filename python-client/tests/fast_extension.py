"""The _ember_fast extension the build puts beside the daemons (build/lib), for
tests that hold its C loops against the Python ones; importing this module
skips the importing test module when the extension was not built (sanitized
or unbuilt trees). Also puts python-client/ on sys.path."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python-client"))
_LIB = Path(os.environ.get("EMBER_BIN_DIR") or REPO / "build" / "bin").resolve().parent / "lib"
if not (_LIB / "_ember_fast.so").exists():
    pytest.skip(f"no _ember_fast extension in {_LIB} (sanitized or unbuilt tree)",
                allow_module_level=True)
sys.path.insert(0, str(_LIB))

import _ember_fast  # noqa: E402,F401
