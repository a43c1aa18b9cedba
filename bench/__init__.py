"""``make bench``: the service's hot paths, each measured against a baseline taken in the same run.

The machine is shared and noisy, so no absolute figure is trusted on its own: every throughput is a
ratio against the cheapest thing that does the same job (raw asyncpg inserts, a bare aiohttp handler),
measured minutes apart on the same PostgreSQL and the same cores, in interleaved rounds.

Layout:

    stack.py       the database (a fresh one on TRACE_DATABASE_URL, or the embedded server), the service
                   as a subprocess, the bare aiohttp baseline server, peak RSS and CPU from /proc
    bare.py        the bare aiohttp handler (``python -m bench.bare``)
    load.py        the load generator; runs in worker processes, never on a server's event loop
    http1.py       the load generator's lean HTTP/1.1 client (keep-alive, bodies read whole, never decoded)
    workloads.py   what each concurrent client sends (picklable, so the workers can build the requests)
    world.py       registering enterprises, nodes, devices and products, and opening batches, via the API
    benchmarks.py  one function per benchmark, registered by name; planned ones are listed at the end
    ledger.py      the million-event ledger, built and written by worker processes straight into the database
    scale.py       ``--scale N``: the read paths' p99 and the server's RSS at a million events and at N
    report.py      results.json and the table
    runner.py      the command line and the order of things

To add a benchmark, write one ``@benchmark("name")`` function in ``benchmarks.py`` that takes the
:class:`~bench.benchmarks.Context` and returns a :class:`~bench.report.Result`.
"""
