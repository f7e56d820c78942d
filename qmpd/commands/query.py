"""The block queries query-named-block-nodes and x-debug-query-block-graph,
straight from :mod:`qmpd.engine.queries`, and query-blockstats
(:mod:`qmpd.engine.blockstats`, timed by the daemon's job clock)."""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import blockstats, queries


@command("query-named-block-nodes", cached=True)
def query_named_block_nodes(daemon: Any, args: dict) -> list:
    return queries.named_block_nodes(daemon.graph, bool(args.get("flat", False)))


@command("x-debug-query-block-graph", features=("unstable",), cached=True)
def x_debug_query_block_graph(daemon: Any, args: dict) -> dict:
    return queries.block_graph(daemon.graph)


@command("query-blockstats")
def query_blockstats(daemon: Any, args: dict) -> list:
    # Not cached: idle_time_ns moves with the clock.
    return blockstats.query_blockstats(daemon.graph, bool(args.get("query-nodes", False)),
                                       daemon.jobs.time.now(),
                                       daemon.profile.blockstats_zone_append)


# query-block lives in qmpd.commands.devices (BlockBackends of devices).
