"""What the server verify's audit workers are forked from imports before it forks any (and nothing else
imports): the audit code, once for every worker, and a quick end.

The server ends when verify does (it reads end-of-file on a pipe from it). It holds no file, lock or
connection of its own, and it inherited verify's standard output and error, which whoever ran verify reads
until every process holding them has gone: an orderly interpreter shutdown, tearing down every module the
audit imported, would keep them open after verify itself has finished. So it leaves at once. The workers it
forks leave the way forked children always do (``os._exit``), and never run this.
"""

from __future__ import annotations

import atexit
import os

import traceability.services.audit_parts  # noqa: F401  (imported for the workers to inherit)

atexit.register(os._exit, 0)
