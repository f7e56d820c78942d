"""qmpd-graph: what the picture says about nodes and links.

The block-commit graph under data/ was read from a running QEMU 7.2
(``block-commit`` with ``speed=1`` so that the job stays), so the implicit
and frozen inference is checked against QEMU's real graph, not qmpd's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qmpd import graphviz
from qmpd.testing import VM

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[2]


def commit_data() -> dict:
    return json.loads((DATA / "qemu72-commit-graph.json").read_text())


def edge_line(dot: str, parent_name: str, child_name: str, data: dict) -> str:
    ids = {n["name"]: n["id"] for n in data["graph"]["nodes"]}
    prefix = f"  n{ids[parent_name]} -> n{ids[child_name]} ["
    return next(line for line in dot.splitlines() if line.startswith(prefix))


def test_commit_job_frozen_links_and_implicit_filter() -> None:
    data = commit_data()
    dot = graphviz.to_dot(data)
    # QEMU freezes commit_top -> mid -> base; top -> commit_top stays free.
    assert "frozen" in edge_line(dot, "#block010", "mid", data)
    assert "frozen" in edge_line(dot, "mid", "base", data)
    assert "frozen" not in edge_line(dot, "top", "#block010", data)
    assert "dashed" in edge_line(dot, "top", "#block010", data)
    assert "frozen" not in edge_line(dot, "top", "top-file", data)
    node = next(line for line in dot.splitlines() if "commit_top" in line)
    assert "dashed" in node and "(implicit)" in node
    assert 'label="commit job (j0)"' in dot
    # Edge labels: role, then taken and shared permissions as QEMU's script writes them.
    assert 'label="intermediate node\\l____\\lw_u_\\l"' in dot


def test_named_filter_is_not_implicit() -> None:
    assert graphviz.is_implicit("#block123", "commit_top")
    assert not graphviz.is_implicit("my-filter", "commit_top")
    assert not graphviz.is_implicit("#block123", "qcow2")


def test_cli_from_json_writes_dot(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    rc = graphviz.main(["--from-json", str(DATA / "qemu72-commit-graph.json"), "-o", str(out)])
    assert rc == 0 and out.read_text().startswith('digraph "block graph" {')


def test_png_without_dot_says_what_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # no 'dot' in an empty PATH
    rc = graphviz.main(["--from-json", str(DATA / "qemu72-commit-graph.json"),
                     "-o", str(tmp_path / "g.png")])
    assert rc == 1
    assert "needs Graphviz's 'dot'" in capsys.readouterr().err


def test_no_server_is_a_clear_error(capsys) -> None:
    assert graphviz.main(["/tmp/qmpd-no-such-dir/x.sock"]) == 1
    assert "cannot connect to /tmp/qmpd-no-such-dir/x.sock" in capsys.readouterr().err


def test_console_script_against_a_running_qmpd() -> None:
    with VM() as vm:
        vm.launch()
        vm.command("blockdev-add", driver="null-co", node_name="disk0", read_only=True)
        res = subprocess.run([sys.executable, "-m", "qmpd.graphviz", vm.sock_path, "--no-legend"],
                             cwd=REPO, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert 'label="disk0\\n[null-co]\\nread-only"' in res.stdout


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz 'dot' is not installed: PNG rendering not tested")
def test_png_rendering(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    assert graphviz.main(["--from-json", str(DATA / "qemu72-commit-graph.json"),
                       "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
