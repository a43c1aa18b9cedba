"""The province's own parts, without servers: the Merkle frontier it verifies copies with, member database names
and conninfo. The province across real processes (two cities published, subscribed, traced, verified, refused
writes) is tests/web/test_federation_story.py.
"""

from __future__ import annotations

from traceability.cli_federation import member_conninfo
from traceability.ledger import merkle
from traceability.ledger.frontier import Frontier
from traceability.storage.province_repo import conninfo_args, database_name


def test_the_right_edge_of_a_tree_gives_the_logs_roots() -> None:
    leaves = [merkle.leaf_hash(n.to_bytes(32, "big")) for n in range(300)]
    edge = Frontier()
    assert edge.root() == merkle.append(0, {}, [])[1]
    for n, leaf in enumerate(leaves, 1):
        edge.append(leaf)
        if n in (1, 2, 3, 7, 8, 9, 255, 256, 257, 300):
            assert edge.root() == merkle.append(0, {}, leaves[:n])[1], n
    assert len(edge.subtrees) == bin(300).count("1")  # one perfect subtree per set bit of the size


def test_member_databases_and_conninfo() -> None:
    a, b = database_name("xuzhou.trace.example/log"), database_name("xuzhou.trace.example/log2")
    assert a.startswith("member_xuzhou_trace_example_log_") and a != b and len(database_name("x" * 200)) <= 63
    assert conninfo_args("host=/run/pg port=5433 dbname=trace user=trace_province") == {
        "host": "/run/pg", "port": 5433, "database": "trace", "user": "trace_province"}  # fmt: skip
    socket = member_conninfo("postgresql://postgres:@/postgres?host=/work/var/pg", "trace_province")
    assert socket == "host=/work/var/pg port=5432 dbname=postgres user=trace_province"
    tcp = member_conninfo("postgresql://trace:secret@db.internal:6432/trace", "trace_province")
    assert tcp == "host=db.internal port=6432 dbname=trace user=trace_province"  # never the password
