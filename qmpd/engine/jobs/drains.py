"""Drained sections (bdrv_drained_begin/end as the block jobs see them):
which jobs a section over some nodes pauses, in which order they pause and
resume (QEMU's parent lists), and jobs started inside a section.  A mixin of
:class:`~qmpd.engine.jobs.state.JobManager`, which owns the jobs, their
pause counts (``_pause``/``_resume``) and the sections under way
(``_drained``).  Synchronous, as the rest of the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.engine.node import Node

if TYPE_CHECKING:
    from qmpd.engine.jobs.state import Job


class DrainedSections:
    """The drain half of the job manager."""

    # JobManager's, which this mixin works on
    _drained: dict[tuple[int, ...], list[tuple[list[Job], list[Node]]]]
    g: Any
    time: Any

    @property
    def jobs(self) -> list[Job]:
        raise NotImplementedError

    def _pause(self, job: Job) -> None:
        raise NotImplementedError

    def _resume(self, job: Job) -> None:
        raise NotImplementedError

    @staticmethod
    def _drain_area(nodes: list[Node], subtree: bool = True) -> set[int]:
        """What a drained section over ``nodes`` quiesces: their subtrees
        (bdrv_subtree_drained_begin; a plain bdrv_drained_begin quiesces the
        nodes themselves only) and their ancestors."""
        area: set[int] = set()
        stack = list(nodes)
        while stack:
            n = stack.pop()
            if id(n) in area:
                continue
            area.add(id(n))
            if subtree:
                stack.extend(e.child for e in n.children)
        up = list(nodes)
        while up:
            n = up.pop()
            for e in n.parents:
                if isinstance(e.parent, Node) and id(e.parent) not in area:
                    area.add(id(e.parent))
                    up.append(e.parent)
        return area

    @staticmethod
    def _holds(job: Job, area: set[int]) -> bool:
        held = [e.child for e in job.edges] + \
            [e.child for b in job.backends for e in b.children]
        return any(id(n) in area for n in held)

    @staticmethod
    def _notify_order(jobs: list[Job], nodes: list[Node], first: bool, direct: bool) -> list[Job]:
        """The order in which a drained section's begin (``first``: a job
        pauses at its first link reached) or end (a job resumes at its last)
        reaches ``jobs``: each node tells its parents, newest link first as
        QEMU's parent list; a node parent passes it on up, unless the drain is
        ``direct`` (bdrv_drain_all: every node tells only its own parents).
        Jobs not reached keep their order, after the others."""
        pos: dict[int, int] = {}
        count = 0
        wanted = {id(j) for j in jobs}

        def tell(node: Node, depth: int) -> None:
            nonlocal count
            for e in reversed(node.parents):
                p = e.parent
                if id(p) in wanted:
                    if not (first and id(p) in pos):
                        pos[id(p)] = count
                    count += 1
                elif isinstance(p, Node) and not direct and depth < 32:
                    tell(p, depth + 1)

        for n in nodes:
            tell(n, 0)
        reached = sorted((j for j in jobs if id(j) in pos), key=lambda j: pos[id(j)])
        return reached + [j for j in jobs if id(j) not in pos]

    def drained(self, nodes: list[Node], begin: bool, direct: bool = False,
                subtree: bool = True) -> None:
        """A drained section over ``nodes``: every job with a node there pauses,
        then resumes at the end (bdrv_drained_begin/end, child_job_drained_*).
        Without ``subtree`` the nodes' children are not drained (jobs below
        them go on)."""
        key = tuple(id(n) for n in nodes)
        if not begin:
            # The jobs the section paused resume, even when the graph changed
            # meanwhile and their nodes are no longer below (QEMU moves the
            # quiesce counts along when a drained child is detached).
            stack = self._drained.get(key)
            section: tuple[list[Job], list[Node]] = stack.pop() if stack else ([], [])
            if stack is not None and not stack:
                del self._drained[key]
            for job in self._notify_order(section[0], section[1], False, direct):
                if job in self.jobs:
                    self._resume(job)
            return
        paused: list[Job] = []
        if self.jobs:
            area = self._drain_area(nodes, subtree)
            held = [job for job in self.jobs
                    if not (job.deferred or job.co is None) and self._holds(job, area)]
            for job in self._notify_order(held, nodes, True, direct):
                self._pause(job)
                paused.append(job)
                # bdrv_drained_begin polls until the job stops
                # (child_job_drained_poll): one waiting for its I/O (busy,
                # which a pause does not wake) gets it and goes on to its
                # pause point.  Under the virtual clock job work waits for
                # the clock's next step, except before 6.0, where the pause
                # itself would otherwise never be reached.
                w = job.waiting_on
                if job.busy and w is not None and getattr(w, "defer", False) and (
                        not self.time.virtual or not self.g.profile.job_pause_wakes):
                    job.enter()
        # the nodes, for a job started inside the section (_enter_drained)
        self._drained.setdefault(key, []).append((paused, list(nodes)))

    def drain_all(self) -> None:
        """bdrv_drain_all: every running job pauses and resumes."""
        nodes = list(self.g.nodes.values())
        self.drained(nodes, True, direct=True)
        self.drained(nodes, False, direct=True)

    def _enter_drained(self, job: Job) -> None:
        """A job created inside a drained section over one of its nodes starts
        paused (its child was attached drained) and resumes at the section's end."""
        for stack in self._drained.values():
            for paused, nodes in stack:
                if job not in paused and self._holds(job, self._drain_area(nodes)):
                    job.pause_count += 1
                    paused.append(job)
