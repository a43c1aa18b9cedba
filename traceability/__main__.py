"""``python -m traceability`` is the ``traceability`` command."""

from traceability.cli import main

if __name__ == "__main__":  # not when a worker process of ``verify`` starts
    raise SystemExit(main())
