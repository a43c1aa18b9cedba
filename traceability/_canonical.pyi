# The walk of ledger.canonical's value check, compiled (traceability/_canonical.c).

from typing import Any

def plain(value: Any, /) -> bool:
    """Whether value is a dict holding only values with a canonical form (False leaves the verdict to Python)."""
