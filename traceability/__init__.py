"""Traceability: a food and drug traceability ledger.

Batches get trace codes; scanners at each node record events that are hash-chained per batch
and sequenced into one append-only Merkle log with signed checkpoints.
"""

__version__ = "0.1.0"
