"""Writes x-blockdev-reopen variants of the corpus' blockdev-reopen scenarios (for QEMU 4.0-6.0).

QEMU 5.2 has no ``blockdev-reopen`` (6.1 renamed it): it has ``x-blockdev-reopen``,
whose arguments are ONE BlockdevOptions instead of ``{"options": [...]}``.  For every
scenario with a blockdev-reopen step this writes ``xr-<name>.json`` with each such
step rewritten mechanically:

* ``{"options": [E]}`` becomes ``x-blockdev-reopen E``;
* a list of several entries becomes one x-blockdev-reopen per entry, in order
  (5.2 cannot reopen several nodes atomically; each entry is still a reopen a
  5.2 client could send);
* an empty list becomes ``x-blockdev-reopen {}``; arguments without an
  ``options`` list are sent unchanged (whatever 5.2 makes of them);
* raw JSON lines that parse as a blockdev-reopen command are rewritten the same
  way (one raw line per entry); lines that do not parse are left alone.

Everything else (setup, other steps) is kept.  Record the variants on 5.2 with
``tests/tools/record_corpus.py --outdir tests/data/recorded/qemu-5.2``.

    python3 tests/tools/make_xreopen.py tests/data/recorded/scenarios/*.json \\
        tests/data/scenarios/scenarios/*.json --outdir tests/data/recorded/scenarios
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

Json = Any
OLD, NEW = "blockdev-reopen", "x-blockdev-reopen"


def rewrite_command(msg: dict[str, Json]) -> list[dict[str, Json]]:
    """One blockdev-reopen command as x-blockdev-reopen commands."""
    args = msg.get("arguments")
    rest = {k: v for k, v in msg.items() if k not in ("execute", "arguments")}
    if isinstance(args, dict) and isinstance(args.get("options"), list) and len(args) == 1:
        entries = args["options"] or [{}]
        return [{"execute": NEW, "arguments": e, **rest} for e in entries]
    out = {"execute": NEW, **rest}
    if "arguments" in msg:
        out["arguments"] = args
    return [out]


def rewrite_step(step: dict[str, Json]) -> list[dict[str, Json]]:
    if step.get("execute") == OLD:
        return rewrite_command(step)
    if isinstance(step.get("raw"), str) and OLD in step["raw"]:
        try:
            msg = json.loads(step["raw"])
        except ValueError:
            return [step]
        if isinstance(msg, dict) and msg.get("execute") == OLD:
            extra = {k: v for k, v in step.items() if k != "raw"}
            return [{"raw": json.dumps(m), **extra} for m in rewrite_command(msg)]
    return [step]


def variant(sc: dict[str, Json]) -> dict[str, Json] | None:
    steps = sc.get("steps", [])
    new = [s for step in steps for s in rewrite_step(step)]
    if new == steps:
        return None
    out = {k: v for k, v in sc.items() if k not in ("steps", "intent", "notes")}
    out["name"] = "xr-" + sc["name"]
    out["description"] = (f"{sc['name']} with blockdev-reopen rewritten as QEMU 5.2's x-blockdev-reopen "
                          "(tests/tools/make_xreopen.py). " + sc.get("description", "")).strip()
    out["steps"] = new
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="+")
    ap.add_argument("--outdir", default="tests/data/recorded/scenarios")
    args = ap.parse_args(argv)
    n = 0
    for path in args.scenarios:
        with open(path) as f:
            sc = json.load(f)
        if sc["name"].startswith("xr-"):
            continue
        v = variant(sc)
        if v is None:
            continue
        with open(os.path.join(args.outdir, v["name"] + ".json"), "w") as f:
            json.dump(v, f, indent=1)
            f.write("\n")
        n += 1
    print(f"wrote {n} x-blockdev-reopen variants")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
