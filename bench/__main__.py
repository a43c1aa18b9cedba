"""``python -m bench``: see bench/__init__.py."""

from __future__ import annotations

# The guard matters: load workers are spawned processes, and spawn re-imports this module.
if __name__ == "__main__":
    from bench.runner import main

    raise SystemExit(main())
