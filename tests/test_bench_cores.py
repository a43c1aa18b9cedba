"""What the benchmark prints beside a ratio: the CPU each side spent, and how far the ratio moved between rounds."""

from __future__ import annotations

from bench.benchmarks import Cores


def test_the_rounds_ratios_are_printed_as_their_range() -> None:
    cores = Cores(0.8, 0.37, 25e-6, (0.265, 0.358, 0.286, 0.349))
    assert str(cores) == "server processes used 0.80 cores, PostgreSQL 0.37; the rounds' ratios 0.265-0.358"
    per = "CPU per proof: server 80 us, PostgreSQL 37 us; the bare handler 25 us an answer"
    assert cores.per(10_000, "proofs/s") == per


def test_one_round_or_none_has_no_range() -> None:
    assert str(Cores(0.5, None, None, (0.3,))) == "server processes used 0.50 cores"
    assert str(Cores(0.5, 0.25)) == "server processes used 0.50 cores, PostgreSQL 0.25"
