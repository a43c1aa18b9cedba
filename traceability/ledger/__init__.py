"""Ledger hashing, Merkle log and checkpoints: pure functions on bytes; imports nothing outside ledger/."""
