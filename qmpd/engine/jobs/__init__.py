"""Block jobs in the engine: the job state machine (state.py), then one
module per job kind: stream.py, commit.py (intermediate and active),
mirror.py (blockdev-mirror and the active commit's mirror loop),
backup.py, create.py (blockdev-create); data.py has the data helpers they
share.  The graph surgery they do is :mod:`qmpd.engine.surgery`; the
filters they insert (commit_top, mirror_top, copy-before-write) are drivers
in :mod:`qmpd.engine.drivers`.

A job kind is added as one module here: a :class:`~qmpd.engine.jobs.state.JobDriver`
subclass and a ``start_...(mgr, args)`` that builds the job's links in a
transaction and calls ``mgr.start(job, driver)``; its command goes in
qmpd/commands (and its schema under schema/).
"""
