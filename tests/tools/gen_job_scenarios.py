"""Seeded generator of block-job scenarios (tests/data/recorded/scenarios/gj-*.json).

Each scenario builds a qcow2 chain with data in every layer, then runs one
or two block jobs of a family drawn from the seed -- blockdev-mirror,
drive-mirror, active and intermediate block-commit, block-stream,
blockdev-backup, drive-backup -- and does to them what clients do: query
them (query-block-jobs, query-jobs, x-debug-query-block-graph,
query-named-block-nodes), pause and resume, change the speed, write
through qemu-io while they run, start a conflicting job, try to delete
their nodes, complete or cancel them, finalize and dismiss them by hand,
and read the result back.  Jobs that are looked at mid-way run with a
speed, so that the rate limiter holds them after their first slice on any
release (as the f21 scenarios do); ``block-job-set-speed 0`` lets them
finish.  Unlike gen_scenarios.py it needs no live QEMU: every step names
nodes the scenario itself created.

Not a test: it writes scenarios to record on a real QEMU (5.2's corpus
measures the 5.2 profile on inputs nobody tuned it on).

    python3 tests/tools/gen_job_scenarios.py --first 1 --count 30 --outdir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
from typing import Any

Json = Any
SPEED = 65536
FAMILIES = ("mirror", "drive-mirror", "commit-active", "commit", "stream", "backup",
            "drive-backup")


def ex(cmd: str, **args: Json) -> dict[str, Json]:
    d: dict[str, Json] = {"execute": cmd}
    if args:
        d["arguments"] = {k.replace("_", "-"): v for k, v in args.items()}
    return d


def hmp(node: str, cmd: str) -> dict[str, Json]:
    return {"hmp": f'qemu-io {node} "{cmd}"'}


def wait(job: str, status: str) -> dict[str, Json]:
    return {"wait_event": "JOB_STATUS_CHANGE", "data": {"id": job, "status": status}}


QBJ = ex("query-block-jobs")
QJ = ex("query-jobs")
G = ex("x-debug-query-block-graph")
QNF = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}


class Gen:
    """One scenario from one seed."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.seed = seed
        self.steps: list[dict[str, Json]] = []
        self.setup: list[str] = []

    def pick(self, seq: Any) -> Any:
        return self.r.choice(list(seq))

    def chain(self) -> list[str]:
        """base <- mid <- top (2 or 3 layers), data in each, plus targets."""
        r = self.r
        size = self.pick(["2M", "3M"])
        layers = ["base", "mid", "top"][: r.choice([2, 3, 3])]
        for i, name in enumerate(layers):
            if i == 0:
                self.setup.append(f"qemu-img create -q -f qcow2 $DIR/{name}.qcow2 {size}")
            else:
                self.setup.append(f"qemu-img create -q -f qcow2 -b $DIR/{layers[i - 1]}.qcow2"
                                  f" -F qcow2 $DIR/{name}.qcow2")
            self.setup.append(f"qemu-io -f qcow2 -c 'write -P 0x{0xa0 + i:x} {i * 512}k 512k'"
                              f" $DIR/{name}.qcow2")
        self.setup.append(f"qemu-img create -q -f qcow2 $DIR/tgt.qcow2 {size}")
        self.setup.append(f"qemu-img create -q -f raw $DIR/tgt.raw {size}")
        for i, name in enumerate(layers):
            args: dict[str, Json] = {"driver": "qcow2", "node-name": name,
                                     "file": {"driver": "file", "node-name": f"{name}-file",
                                              "filename": f"$DIR/{name}.qcow2"}}
            if i == 0:
                args["backing"] = None
            else:
                args["backing"] = layers[i - 1]
            if i < len(layers) - 1 and r.random() < 0.3:
                args["read-only"] = True
            self.steps.append(ex("blockdev-add", **args))
        return layers

    def add_target(self, fmt: str) -> str:
        name = "tq" if fmt == "qcow2" else "tr"
        self.steps.append(ex("blockdev-add", driver=fmt, node_name=name,
                             file={"driver": "file", "node-name": f"{name}-file",
                                   "filename": f"$DIR/tgt.{'qcow2' if fmt == 'qcow2' else 'raw'}"}))
        return name

    def start(self, fam: str, layers: list[str], jid: str, speed: bool,
              manual: bool) -> tuple[dict[str, Json], bool]:
        """(the command starting the job, whether it ever becomes ready)."""
        r = self.r
        top = layers[-1]
        extra: dict[str, Json] = {}
        if speed:
            extra["speed"] = SPEED
        if manual:
            extra["auto-finalize"] = False
            extra["auto-dismiss"] = False
        if r.random() < 0.25 and fam in ("mirror", "commit-active", "commit", "backup"):
            extra["filter-node-name"] = f"{jid}-f"
        if fam == "mirror":
            tgt = self.add_target(self.pick(["qcow2", "raw"]))
            sync = self.pick(["full", "full", "top", "none"])
            return ex("blockdev-mirror", job_id=jid, device=top, target=tgt, sync=sync,
                      **extra), True
        if fam == "drive-mirror":
            extra.pop("filter-node-name", None)
            sync = self.pick(["full", "top", "none"])
            mode = self.pick(["absolute-paths", "existing"]) if sync != "none" else \
                "absolute-paths"
            fmt = self.pick(["qcow2", "raw"]) if mode == "existing" else "qcow2"
            tgt = f"$DIR/tgt.{fmt}" if mode == "existing" else "$DIR/new.qcow2"
            return ex("drive-mirror", job_id=jid, device=top, target=tgt, sync=sync,
                      mode=mode, format=fmt, node_name=f"{jid}-t", **extra), True
        if fam == "commit-active":
            args = {"job_id": jid, "device": top, **extra}
            if len(layers) == 3 and r.random() < 0.5:
                args["base-node"] = layers[1]
            return ex("block-commit", **args), True
        if fam == "commit":
            if len(layers) < 3:
                return ex("block-commit", job_id=jid, device=top, top_node=layers[0],
                          **extra), False
            return ex("block-commit", job_id=jid, device=top, top_node=layers[1],
                      base_node=layers[0], **extra), False
        if fam == "stream":
            extra.pop("filter-node-name", None)
            args = {"job_id": jid, "device": top, **extra}
            if len(layers) == 3 and r.random() < 0.5:
                args["base-node"] = layers[0]
            return ex("block-stream", **args), False
        if fam == "backup":
            tgt = self.add_target(self.pick(["qcow2", "raw"]))
            sync = self.pick(["full", "full", "top", "none"])
            if r.random() < 0.3:
                self.steps.append(ex("block-dirty-bitmap-add", node=top, name="bm"))
                self.steps.append(hmp(top, "write -P 0x55 64k 128k"))
                return ex("blockdev-backup", job_id=jid, device=top, target=tgt,
                          sync="bitmap", bitmap="bm",
                          bitmap_mode=self.pick(["on-success", "always", "never"]),
                          **extra), False
            return ex("blockdev-backup", job_id=jid, device=top, target=tgt, sync=sync,
                      **extra), False
        extra.pop("filter-node-name", None)
        sync = self.pick(["full", "top", "none"])
        return ex("drive-backup", job_id=jid, device=top, target="$DIR/bk.qcow2", sync=sync,
                  format="qcow2", **extra), False

    def middle(self, jid: str, layers: list[str]) -> None:
        """What a client does while the job is held by its speed."""
        r = self.r
        acts = ["pause", "write", "del", "second", "graph", "nodes", "reopen", "speed"]
        for a in r.sample(acts, r.randint(2, 4)):
            if a == "pause":
                if r.random() < 0.5:
                    self.steps.append(ex("job-pause", id=jid))
                else:
                    self.steps.append(ex("block-job-pause", device=jid))
                self.steps.append(QBJ)
                if r.random() < 0.5:
                    self.steps.append(ex("block-job-complete", device=jid))
                self.steps.append(ex("job-resume", id=jid))
            elif a == "write":
                self.steps.append(hmp(layers[-1] if r.random() < 0.7 else layers[0],
                                      "write -P 0x77 0 64k"))
            elif a == "del":
                self.steps.append(ex("blockdev-del", node_name=self.pick(layers)))
            elif a == "second":
                # with a speed too: one that starts stays held (no race
                # between its copying and the next command)
                self.steps.append(ex(self.pick(["block-stream", "block-commit"]),
                                     job_id="j2", device=layers[-1], speed=SPEED))
            elif a == "graph":
                self.steps.append(G)
            elif a == "nodes":
                self.steps.append(QNF)
            elif a == "reopen" and len(layers) > 1:
                n = layers[0]
                self.steps.append(ex("x-blockdev-reopen", driver="qcow2", node_name=n,
                                     file=f"{n}-file", read_only=self.pick([True, False]),
                                     backing=None))
            elif a == "speed":
                self.steps.append(ex("block-job-set-speed", device=jid, speed=SPEED * 2))
                self.steps.append(QJ)

    def build(self) -> dict[str, Json]:
        r = self.r
        layers = self.chain()
        fam = self.pick(FAMILIES)
        jid = "j1"
        manual = r.random() < 0.3
        cmd, readies = self.start(fam, layers, jid, speed=True, manual=manual)
        self.steps.append(cmd)
        self.steps.append({"sleep": 0.2})
        self.steps += [QBJ, G]
        self.middle(jid, layers)
        self.steps.append(ex("block-job-set-speed", device=jid, speed=0))
        if readies:
            self.steps.append({"wait_event": "BLOCK_JOB_READY", "data": {"device": jid}})
            self.steps += [QBJ, G]
            end = self.pick(["block-job-complete", "block-job-cancel"])
            self.steps.append(ex(end, device=jid))
        if manual:
            self.steps.append(wait(jid, "pending"))
            self.steps += [QJ, G]
            self.steps.append(ex(self.pick(["job-finalize", "block-job-finalize"]), id=jid))
            self.steps.append(wait(jid, "concluded"))
            self.steps += [QBJ, G]
            self.steps.append(ex("job-dismiss", id=jid))
        else:
            self.steps.append(wait(jid, "null"))
        self.steps += [QBJ, G, QNF]
        self.steps.append(hmp(layers[-1], "read -P 0xa0 0 512k"))
        return {"name": f"gj-{self.seed:04d}",
                "description": f"generated block-job scenario ({fam}), seed {self.seed}",
                "source": "generated (tests/tools/gen_job_scenarios.py)",
                "setup": self.setup, "steps": self.steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--outdir", default="tests/data/recorded/scenarios")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    for seed in range(a.first, a.first + a.count):
        sc = Gen(seed).build()
        with open(os.path.join(a.outdir, sc["name"] + ".json"), "w") as f:
            json.dump(sc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
