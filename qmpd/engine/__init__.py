"""The block graph engine: synchronous and pure.

No trio and no JSON here: :class:`~qmpd.engine.graph.BlockGraph` owns the
nodes, edges, permissions and reopen transactions; errors are
:class:`~qmpd.engine.errors.BlockError` carrying QEMU's text.
"""
