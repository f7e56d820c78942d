"""The QEMU 5.2 profile: what a client written for QEMU 5.x notices.

Each test runs the same commands through a daemon answering as 7.2 and one
answering as 5.2, and checks what differs (measured on the real releases:
the recordings under ``tests/data/*/qemu-5.2/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select


def _daemon(version: str) -> Dispatcher:
    return Dispatcher(Daemon(select(version), job_time=VirtualClock()))


def _image(tmp_path: Path, name: str, size: int = 1 << 20) -> str:
    path = tmp_path / name
    path.write_bytes(b"\0" * size)
    return str(path)


def _error(d: Dispatcher, cmd: str, args: dict) -> tuple[str, str]:
    with pytest.raises(QMPError) as e:
        d.execute(cmd, args)
    return e.value.cls, d.profile.render(e.value.message)


def test_blockdev_reopen_is_not_a_52_command_but_x_blockdev_reopen_is() -> None:
    d52, d72 = _daemon("5.2.0"), _daemon("7.2.22")
    assert _error(d52, "blockdev-reopen", {"options": []}) == (
        "CommandNotFound", "The command blockdev-reopen has not been found")
    assert "x-blockdev-reopen" in d52.command_names()
    assert "blockdev-reopen" in d72.command_names()
    d52.execute("blockdev-add", {"driver": "null-co", "node-name": "n0"})
    assert d52.execute("x-blockdev-reopen", {"driver": "null-co", "node-name": "n0",
                                             "read-only": True}) == {}


@pytest.mark.parametrize("version, outcome", [
    ("5.2.0", "Cannot change the option 'file'"),   # only backing could change before 6.0
    ("7.2.22", None),
])
def test_a_new_file_child_by_reference(tmp_path: Path, version: str, outcome: str | None) -> None:
    d = _daemon(version)
    a, b = _image(tmp_path, "a.img"), _image(tmp_path, "b.img")
    d.execute("blockdev-add", {"driver": "file", "node-name": "fa", "filename": a})
    d.execute("blockdev-add", {"driver": "file", "node-name": "fb", "filename": b})
    d.execute("blockdev-add", {"driver": "raw", "node-name": "r", "file": "fa"})
    reopen = {"driver": "raw", "node-name": "r", "file": "fb"}
    if outcome is None:
        assert d.execute("x-blockdev-reopen", reopen) == {}
    else:
        assert _error(d, "x-blockdev-reopen", reopen) == ("GenericError", outcome)


def test_52_texts_for_the_same_mistakes(tmp_path: Path) -> None:
    d52, d72 = _daemon("5.2.0"), _daemon("7.2.22")
    for d in (d52, d72):
        d.execute("blockdev-add", {"driver": "null-co", "node-name": "n0"})
    cases = [
        ("blockdev-add", {"driver": "null-co", "node-name": "n0"},
         "Duplicate node name", "Duplicate nodes with node-name='n0'"),
        ("blockdev-add", {"driver": "null-co", "node-name": "a b"},
         "Invalid node name", "Invalid node-name: 'a b'"),
        ("blockdev-del", {"node-name": "gone"},
         "Cannot find node gone", "Failed to find node with node-name='gone'"),
        ("x-blockdev-reopen", {"driver": "null-co", "node-name": "gone"},
         "Cannot find node named 'gone'", "Failed to find node with node-name='gone'"),
        ("blockdev-add", {"driver": "nope", "node-name": "x"},
         "Invalid parameter 'nope'", "Parameter 'driver' does not accept value 'nope'"),
    ]
    for cmd, args, text52, text72 in cases:
        assert _error(d52, cmd, args)[1] == text52
        assert _error(d72, cmd, args)[1] == text72


def test_52_queries_have_its_fields_and_permissions(tmp_path: Path) -> None:
    d52, d72 = _daemon("5.2.0"), _daemon("7.2.22")
    img = _image(tmp_path, "d.img")
    for d in (d52, d72):
        d.execute("blockdev-add", {"driver": "raw", "node-name": "r",
                                   "file": {"driver": "file", "filename": img}})
    (n52,) = [n for n in d52.execute("query-named-block-nodes", {}) if n["node-name"] == "r"]
    (n72,) = [n for n in d72.execute("query-named-block-nodes", {}) if n["node-name"] == "r"]
    assert n52.pop("encryption_key_missing") is False
    assert "encryption_key_missing" not in n72
    (e52,) = d52.execute("x-debug-query-block-graph", {})["edges"]
    (e72,) = d72.execute("x-debug-query-block-graph", {})["edges"]
    # 5.2 had a fifth permission, graph-mod, which every user shares
    assert e52["shared-perm"] == ["graph-mod", *e72["shared-perm"]]
    assert e52["perm"] == e72["perm"]


def test_52_reports_a_permission_conflict_against_the_existing_user(tmp_path: Path) -> None:
    from qmpd.img.cli import main as qemu_img

    img = str(tmp_path / "d.qcow2")
    assert qemu_img(["create", "-q", "-f", "qcow2", img, "1M"]) == 0
    texts = {}
    for version in ("5.2.0", "7.2.22"):
        d = _daemon(version)
        d.execute("blockdev-add", {"driver": "file", "node-name": "f", "filename": img})
        d.execute("blockdev-add", {"driver": "qcow2", "node-name": "q1", "file": "f"})
        texts[version] = _error(d, "blockdev-add", {"driver": "qcow2", "node-name": "q2",
                                                   "file": "f"})[1]
    # 5.2 names the user already there; 7.2 both
    assert texts["5.2.0"] == ("Conflicts with use by q1 as 'file', which does not allow "
                              "'write, resize' on f")
    assert texts["7.2.22"].startswith("Permission conflict on node 'f': permissions "
                                      "'write, resize' are both required by node 'q1'")
    assert "unshared by node 'q2'" in texts["7.2.22"]


def test_52_schema_lists_enum_values_only_and_has_the_drive_jobs() -> None:
    # A 5.2 client's introspection: SchemaInfoEnum has no 'members' there,
    # qcow2 compression is zlib only (Debian 11 built without zstd), and the
    # drive-* job commands are offered.
    ours = {v: _daemon(v).execute("query-qmp-schema", {}) for v in ("5.2.0", "7.2.22")}
    enums = {v: [e for e in s if e["meta-type"] == "enum"] for v, s in ours.items()}
    assert all("members" not in e for e in enums["5.2.0"])
    assert all("members" in e for e in enums["7.2.22"])
    compression = {v: [e["values"] for e in es if "zlib" in e["values"]] for v, es in enums.items()}
    assert compression == {"5.2.0": [["zlib"]], "7.2.22": [["zlib", "zstd"]]}
    commands = {e["name"] for e in ours["5.2.0"] if e["meta-type"] == "command"}
    assert {"drive-mirror", "drive-backup"} <= commands


def test_52_bitmaps_report_their_status() -> None:
    # BlockDirtyInfo's deprecated 'status' was still there in 5.2 (dropped in 6.0).
    d52, d72 = _daemon("5.2.0"), _daemon("7.2.22")
    for d in (d52, d72):
        d.execute("blockdev-add", {"driver": "null-co", "node-name": "n0"})
        d.execute("block-dirty-bitmap-add", {"node": "n0", "name": "on"})
        d.execute("block-dirty-bitmap-add", {"node": "n0", "name": "off", "disabled": True})

    def statuses(d: Dispatcher) -> dict[str, str | None]:
        (node,) = d.execute("query-named-block-nodes", {})
        return {b["name"]: b.get("status") for b in node["dirty-bitmaps"]}

    assert statuses(d52) == {"on": "active", "off": "disabled"}
    assert statuses(d72) == {"on": None, "off": None}


def test_52_qemu_io_truncate_takes_only_an_offset(tmp_path: Path) -> None:
    # 5.2's qemu-io truncate_cmd has argmin = argmax = 1 and no -m option, and
    # its qemu_strtosz (strtod) finds a negative size out of range.
    img = _image(tmp_path, "t.img")
    out = {}
    for v in ("5.2.0", "7.2.22"):
        d = _daemon(v)
        d.execute("blockdev-add", {"driver": "raw", "node-name": "r",
                                   "file": {"driver": "file", "filename": img}})
        out[v] = [d.execute("human-monitor-command",
                            {"command-line": f'qemu-io r "{line}"'})
                  for line in ("truncate -m full 2M", "help truncate", "truncate -1")]
    assert out["5.2.0"] == [
        "bad argument count 3 to truncate, expected 1 arguments\n",
        "truncate off -- truncates the current file at the given offset\n",
        "Parsing error: argument too large -- -1\n"]
    assert out["7.2.22"][1] == ("truncate [-m prealloc_mode] off -- truncates the current "
                                "file at the given offset\n")


def test_52_raw_with_an_offset_takes_write_and_resize_on_its_file(tmp_path: Path) -> None:
    # Before 6.0's raw_child_perm, a raw node with an offset under a
    # copy-on-read filter (which takes write-unchanged) passed on
    # bdrv_default_perms' WRITE and RESIZE to its file, unused as they are.
    img = _image(tmp_path, "o.img")
    perm = {}
    for v in ("5.2.0", "7.2.22"):
        d = _daemon(v)
        d.execute("blockdev-add", {"driver": "raw", "node-name": "r", "offset": 4096,
                                   "file": {"driver": "file", "filename": img}})
        d.execute("blockdev-add", {"driver": "copy-on-read", "node-name": "c", "file": "r"})
        graph = d.execute("x-debug-query-block-graph", {})
        ids = {n["id"]: n["name"] for n in graph["nodes"]}
        (edge,) = [e for e in graph["edges"] if ids[e["parent"]] == "r"]
        perm[v] = edge["perm"]
    assert perm == {"5.2.0": ["resize", "write-unchanged", "write"],
                    "7.2.22": ["write-unchanged"]}


def _chain(d: Dispatcher, tmp_path: Path) -> None:
    """base <- top (qcow2, 1 MiB) and a spare qcow2 target ``t``."""
    from qmpd.img.cli import main as qemu_img

    for name in ("base", "t"):
        assert qemu_img(["create", "-q", "-f", "qcow2", str(tmp_path / f"{name}.qcow2"),
                         "1M"]) == 0
    base = str(tmp_path / "base.qcow2")
    top = str(tmp_path / "top.qcow2")
    if not Path(top).exists():
        assert qemu_img(["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top]) == 0
    for name in ("base", "top", "t"):
        args: dict = {"driver": "qcow2", "node-name": name,
                      "file": {"driver": "file", "node-name": f"{name}-file",
                               "filename": str(tmp_path / f"{name}.qcow2")}}
        if name == "base":
            args["backing"] = None
        elif name == "top":
            args["backing"] = "base"
        else:
            args["backing"] = None
        d.execute("blockdev-add", args)


def _edges(d: Dispatcher) -> dict[tuple[str, str, str], tuple[list[str], list[str]]]:
    g = d.execute("x-debug-query-block-graph", {})
    names = {n["id"]: (n["name"] or f"<{n['type']}>") for n in g["nodes"]}
    return {(names[e["parent"]], e["name"], names[e["child"]]): (e["perm"], e["shared-perm"])
            for e in g["edges"]}


@pytest.mark.parametrize("version", ["5.2.0", "7.2.22"])
def test_52_jobs_hold_their_own_block_backend(tmp_path: Path, version: str) -> None:
    # block_job_create before 6.0: the job's permissions are those of an
    # unnamed BlockBackend on its main node; its own "main node" link takes
    # nothing and shares everything.  mirror_top passes on only writes.
    d = _daemon(version)
    _chain(d, tmp_path)
    d.execute("blockdev-mirror", {"job-id": "m", "device": "top", "target": "t",
                                  "sync": "full", "filter-node-name": "mt", "speed": 65536})
    edges = _edges(d)
    main = edges[("m", "main node", "mt")]
    if version == "5.2.0":
        assert main == ([], ["graph-mod", "resize", "write-unchanged", "write",
                             "consistent-read"])
        assert edges[("<block-backend>", "root", "mt")] == (
            ["consistent-read"], ["graph-mod", "write-unchanged", "write", "consistent-read"])
        assert edges[("mt", "backing", "top")][0] == []
    else:
        assert main == (["consistent-read"], ["write-unchanged", "write", "consistent-read"])
        assert ("<block-backend>", "root", "mt") not in edges
        assert edges[("mt", "backing", "top")][0] == ["consistent-read"]


@pytest.mark.parametrize("version, filter_, child", [
    ("5.2.0", "backup-top", "backing"), ("7.2.22", "copy-before-write", "file")])
def test_52_backup_inserts_backup_top_over_a_backing_child(
        tmp_path: Path, version: str, filter_: str, child: str) -> None:
    d = _daemon(version)
    _chain(d, tmp_path)
    d.execute("blockdev-backup", {"job-id": "b", "device": "top", "target": "t",
                                  "sync": "full", "filter-node-name": "bf", "speed": 65536})
    (node,) = [n for n in d.execute("query-named-block-nodes", {}) if n["node-name"] == "bf"]
    assert node["drv"] == filter_
    assert ("bf", child, "top") in _edges(d)
    # 5.2's backup copies a 64 KiB cluster, then the rate limit holds it
    (job,) = d.execute("query-block-jobs", {})
    assert job["offset"] == (65536 if version == "5.2.0" else 1 << 20)


def test_52_qemu_io_conflicting_with_a_job_names_the_job(tmp_path: Path) -> None:
    d = _daemon("5.2.0")
    _chain(d, tmp_path)
    d.execute("human-monitor-command", {"command-line": 'qemu-io base "write -P 2 0 1M"'})
    d.execute("block-stream", {"job-id": "s", "device": "top", "speed": 65536})
    assert d.execute("query-block-jobs", {})[0]["status"] == "running"
    out = d.execute("human-monitor-command",
                    {"command-line": 'qemu-io base "write -P 1 0 64k"'})
    assert out == ("Conflicts with use by stream job 's' as 'intermediate node', which "
                   "does not allow 'write' on base\r\n")
