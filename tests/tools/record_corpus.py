"""Records the corpus scenarios against a real QEMU (7.2, 10.0), twice, and keeps only stable ones.

For every scenario in tests/data/recorded/scenarios/ (or the files given), the shared
oracle tool /work/shared/oracle/qmpreplay.py records two transcripts in separate QEMU
runs.  A scenario is kept (its first transcript copied to tests/data/recorded/qemu/)
only when QEMU survived it and the two transcripts compare "exact" on every step;
the others are reported as dropped, with the reason, and their old recordings are
removed.  Needs QEMU; CI never runs this.

    python3 tests/tools/record_corpus.py                # whole corpus
    python3 tests/tools/record_corpus.py tests/data/recorded/scenarios/t-objects.json
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "data", "recorded")
QMPREPLAY = "/work/shared/oracle/qmpreplay.py"


def load_qmpreplay(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("qmpreplay", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def record(paths: list[str], outdir: str, qmpreplay: str) -> None:
    # batches keep one failing command line from losing the whole run
    for i in range(0, len(paths), 40):
        subprocess.run([sys.executable, qmpreplay, "record", "--target", "qemu", "--mask-key", "package",
                        "--outdir", outdir, *paths[i:i + 40]], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def crashed(transcript: dict) -> bool:
    """QEMU went away other than by a `quit` step (which exits with status 0)."""
    ex = transcript.get("exit", {})
    return ex.get("how") == "died" and ex.get("returncode") != 0


def _stream(transcript: dict) -> list[str]:
    out = []
    for step in transcript.get("steps", []):
        for ev in step.get("events") or []:
            out.append(json.dumps({k: v for k, v in ev.items() if k != "timestamp"},
                                  sort_keys=True))
    return out


def _update_listing(outdir: str, streams: dict[str, bool]) -> None:
    """tests/data/recorded/deterministic_events.json: per release series (from
    the recordings folder: qemu = 7.2, qemu-<series>), the scenarios whose
    whole event stream two recordings agreed on."""
    folder = os.path.basename(os.path.normpath(outdir))
    series = "7.2" if folder == "qemu" else folder[len("qemu-"):]
    path = os.path.join(DATA, "deterministic_events.json")
    listing: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as fh:
            listing = json.load(fh)
    names = set(listing.get(series, []))
    for name, same in streams.items():
        (names.add if same else names.discard)(name)
    listing[series] = sorted(names)
    with open(path, "w") as fh:
        json.dump(listing, fh, indent=1)
        fh.write("\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--qmpreplay", default=QMPREPLAY)
    ap.add_argument("--outdir", default=os.path.join(DATA, "qemu"))
    ap.add_argument("--keep-crashes", action="store_true",
                    help="keep a scenario where QEMU died at the same step with the same status in "
                         "both runs (the profile answers as 7.2 there; conformance lists the step)")
    args = ap.parse_args(argv)
    # QMPREPLAY_QEMU (read by qmpreplay) picks the QEMU; its PATH the qemu-img of setup lines.
    paths = args.scenarios or sorted(glob.glob(os.path.join(DATA, "scenarios", "*.json")))
    qr = load_qmpreplay(args.qmpreplay)
    os.makedirs(args.outdir, exist_ok=True)
    dropped: dict[str, str] = {}
    streams: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="qmpd-corpus-") as tmp:
        runs = [os.path.join(tmp, "a"), os.path.join(tmp, "b")]
        for r in runs:
            os.makedirs(r)
            record(paths, r, args.qmpreplay)
        for p in paths:
            name = json.load(open(p))["name"]
            trs = []
            for r in runs:
                try:
                    with open(os.path.join(r, name + ".json")) as fh:
                        trs.append(json.load(fh))
                except OSError:
                    trs.append(None)
            why = ""
            if trs[0] is None or trs[1] is None:
                why = "no transcript"
            elif args.keep_crashes and all(t.get("exit", {}).get("how") == "died" for t in trs) \
                    and trs[0]["exit"] == trs[1]["exit"] and trs[0]["exit"].get("step", -1) >= 0 \
                    and not any(k in t for t in trs for k in ("setup_error", "startup_error")):
                counts, notes, _ = qr.compare_transcripts(trs[0], trs[1])
                if sum(v for k, v in counts.items() if k != "exact"):
                    why = "non-deterministic before QEMU died"
            elif any(crashed(t) for t in trs):
                t = next(t for t in trs if crashed(t))
                why = f"QEMU died at step {t['exit'].get('step')} (rc {t['exit'].get('returncode')})"
            elif any(k in t for t in trs for k in ("setup_error", "startup_error")):
                why = "setup/startup error"
            else:
                counts, notes, _ = qr.compare_transcripts(trs[0], trs[1])
                bad = sum(v for k, v in counts.items() if k != "exact")
                if bad or notes:
                    why = f"non-deterministic: {bad} step(s) differ between two runs {'; '.join(notes)}".strip()
            dest = os.path.join(args.outdir, name + ".json")
            if not why:
                # The whole event stream (events.py's view) the same in both runs:
                # the conformance suite then checks qmpd's whole stream too.
                streams[name] = _stream(trs[0]) == _stream(trs[1])
            if why:
                dropped[name] = why
                if os.path.exists(dest):
                    os.remove(dest)
            else:
                shutil.copyfile(os.path.join(runs[0], name + ".json"), dest)
    _update_listing(args.outdir, streams)
    print(f"kept {len(paths) - len(dropped)} of {len(paths)}, "
          f"{sum(streams.values())} with a deterministic event stream")
    for name, why in sorted(dropped.items()):
        print(f"dropped {name}: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
