"""``python -m traceability`` is the ``traceability`` command."""

from traceability.cli import main

raise SystemExit(main())
