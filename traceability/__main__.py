"""``python -m traceability`` is the ``traceability`` command."""

import sys


def _start_audit_workers() -> None:
    """``verify`` forks its workers from a server that imports the audit first: starting it before the
    command's own imports lets the two import side by side."""
    from traceability.services import audit_workers

    audit_workers.start_server()


if __name__ == "__main__" and sys.argv[1:2] == ["verify"]:
    _start_audit_workers()

from traceability.cli import main  # noqa: E402

if __name__ == "__main__":  # not when a worker process of ``verify`` starts
    raise SystemExit(main())
