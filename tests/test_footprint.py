"""What the serving process loads at start: the heavy dictionaries only where a request needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pypinyin",)  # about 50 MB of resident memory once imported


def test_the_server_starts_without_the_heavy_dictionaries() -> None:
    code = f"import sys, traceability.http.app; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing the app loads {out.strip()}: import them inside the functions that use them"
