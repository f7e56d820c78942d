"""``qmpd-img check``: qemu-img 7.2's img_check for qcow2 images (no repairs).

Human and ``--output=json`` reports as qemu-img prints them, the problems
found on stderr first (qemu-img writes them unbuffered while its stdout
waits in the pipe), and its exit codes: 0 clean, 1 the check could not
run, 2 corruptions, 3 leaked clusters only, 63 a format without checks.
"""

from __future__ import annotations

import json
from typing import Any

from qmpd.img.getopt import getopt_long
from qmpd.img.images import ImageOpenError, open_image
from qmpd.qcow2.check import CheckResult, check_qcow2
from qmpd.qobject import key_order


def _usage_error(text: str) -> tuple[int, str, str]:
    return 1, "", f"qemu-img: {text}\nTry 'qemu-img --help' for more information\n"


def human(r: CheckResult) -> str:
    """dump_human_image_check."""
    out = []
    if not (r.corruptions or r.leaks or r.check_errors):
        out.append("No errors were found on the image.\n")
    else:
        if r.corruptions:
            out.append(f"\n{r.corruptions} errors were found on the image.\n"
                       "Data may be corrupted, or further writes to the image may "
                       "corrupt it.\n")
        if r.leaks:
            out.append(f"\n{r.leaks} leaked clusters were found on the image.\n"
                       "This means waste of disk space, but no harm to data.\n")
        if r.check_errors:
            out.append(f"\n{r.check_errors} internal errors have occurred during the check.\n")
    if r.total_clusters and r.allocated_clusters:
        out.append(f"{r.allocated_clusters}/{r.total_clusters} = "
                   f"{r.allocated_clusters * 100.0 / r.total_clusters:.2f}% allocated, "
                   f"{r.fragmented_clusters * 100.0 / r.allocated_clusters:.2f}% fragmented, "
                   f"{r.compressed_clusters * 100.0 / r.allocated_clusters:.2f}% compressed "
                   "clusters\n")
    if r.image_end_offset:
        out.append(f"Image end offset: {r.image_end_offset}\n")
    return "".join(out)


def as_json(r: CheckResult, filename: str) -> str:
    """dump_json_image_check: ImageCheck, optional members only when non-zero,
    in the order qemu-img's QDict prints them."""
    d: dict[str, Any] = {"filename": filename, "format": "qcow2",
                         "check-errors": r.check_errors}
    for key, value in (("image-end-offset", r.image_end_offset),
                       ("corruptions", r.corruptions), ("leaks", r.leaks),
                       ("total-clusters", r.total_clusters),
                       ("allocated-clusters", r.allocated_clusters),
                       ("fragmented-clusters", r.fragmented_clusters),
                       ("compressed-clusters", r.compressed_clusters)):
        if value:
            d[key] = value
    ordered = {k: d[k] for k in key_order(list(d))}
    return json.dumps(ordered, indent=4) + "\n"


def run(argv: list[str]) -> tuple[int, str, str]:
    """``qmpd-img check ARGS`` -> (status, stdout, stderr)."""
    try:
        opts, operands = getopt_long(argv, "hf:r:T:qU", {
            "help": "h", "format": "f:", "repair": "r:", "output": "o:",
            "object": "O:", "image-opts": "i", "force-share": "U"})
    except ValueError as exc:
        return _usage_error(str(exc))
    fmt = None
    output = None
    quiet = False
    force_share = False
    for k, v in opts:
        if k == "f":
            fmt = v
        elif k == "o":
            output = v
        elif k == "q":
            quiet = True
        elif k == "U":
            force_share = True
        elif k == "r":
            if v not in ("leaks", "all"):
                return 1, "", ("qemu-img: Unknown option value for -r (expecting 'leaks' or "
                               f"'all'): {v}\nTry 'qemu-img --help' for more information\n")
            return 1, "", "qmpd-img: check: repairs (-r) are not supported\n"
    if len(operands) != 1:
        return _usage_error("Expecting one image file name")
    if output not in (None, "human", "json"):
        return 1, "", "qemu-img: --output must be used with human or json as argument.\n"
    path = operands[0]
    try:
        opened = open_image(path, fmt, read_only=True, force_share=force_share)
    except ImageOpenError as e:
        return 1, "", f"qemu-img: Could not open '{path}': {e}\n"
    try:
        image = getattr(opened.top, "image", None)
        if image is None:
            return 63, "", "qemu-img: This image format does not support checks\n"
        result = check_qcow2(image.store)
    finally:
        for store in opened.stores:
            store.close()
    err = "".join(m + "\n" for m in result.messages)
    out = as_json(result, path) if output == "json" else human(result)
    if quiet:
        out = ""
    if result.check_errors:
        return 1, out, err + "qemu-img: Check failed\n"
    return (2 if result.corruptions else 3 if result.leaks else 0), out, err
