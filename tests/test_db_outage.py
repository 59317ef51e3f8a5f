"""Issue 15, "database outage under load", short form: the audit's PostgreSQL stopped mid-call and started again.

The same experiment as ``make db-outage`` (``bench/db_outage.py``), small: a few paced calls through a
real ``hybrid-agent serve`` into a PostgreSQL cluster this test starts itself on a free port
(``bench/pg_cluster.py``; never the shared server on 5432), stopped with ``pg_ctl stop -m fast`` a few
seconds into the calls for a few seconds.  Proven, against what the callers saw of every call: no
audit record lost or duplicated, the spool replayed in order as one block of the chain and emptied,
``audit verify`` passes, and ``/healthz`` / ``/readyz`` (sampled every 0.5 s) said what was true
before, during and after.  The latency ratio is the benchmark's figure, not asserted here.

A cluster that cannot start fails the test (``PgClusterError``); it never skips.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks live beside hybrid_agent/ in the checkout, not in the package
    sys.path.insert(0, str(ROOT))

from bench import db_outage  # noqa: E402
from bench.pg_cluster import PgCluster  # noqa: E402


@pytest.fixture
def pg() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        cluster.start()  # PgClusterError (with the server log) fails the test loudly
        yield cluster
    finally:
        cluster.close()  # stopped and deleted whatever happened


async def test_database_outage_under_load_loses_nothing_and_health_tells_the_truth(pg: PgCluster) -> None:
    p = db_outage.Params(calls=3, call_s=14.0, outage_start_s=5.0, outage_s=4.5, detect_grace=1.5, recover_grace=3.0,
                         drain_timeout=30.0, warmup=False)
    fig = await db_outage.run(p, baselines=0, pin=False, pg=pg)
    assert pg.is_running()  # started again after the outage
    (run,) = fig["runs"]
    rec = run["records"]

    # the outage happened under load: records went to the spool while calls were live
    assert run["outage"]["stop_done"] is not None and run["outage"]["start_done"] is not None
    assert run["bridge_spooled_records"] and rec["spooled_lines"] > 0, run["outage"]
    assert run["dropped"] == 0 and not run["call_errors"]

    # every record the callers' calls produced is there once
    assert rec["calls_found"] == p.calls
    assert rec["lost"] == 0, rec["problems"]["lost"]
    assert rec["duplicated"] == 0, rec["problems"]["duplicated"]
    assert rec["unexpected"] == 0, rec["problems"]["unexpected"]
    assert rec["expected"] == rec["found"] == rec["ledger"] == run["bridge_durable_records"]
    assert rec["verify_ok"], rec["verify_problems"]

    # the spool drained, in order, into one contiguous block of the chain; nothing set aside
    assert rec["spool_in_order"], rec["problems"]["order"]
    assert run["drained"] and run["spool_lines_at_end"] == 0 and run["quarantined"] == 0

    # health: judged while the database was down, and honest throughout
    health = run["health"]
    assert health["phases"].get("down", 0) >= 3, health["phases"]
    assert not health["lies"], health["lies"]
    assert all(k.startswith("healthz degraded (reachable False, spooling True); readyz 200")
               for k, n in health["while_down"].items() if n), health["while_down"]
    assert health["at_rest"] == "healthz ok (reachable True, spooling False); readyz 200"
    assert run["problems"] == []
