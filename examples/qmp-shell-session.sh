#!/bin/sh
# A qmp-shell session against qmpd: qemu.qmp ships QEMU's qmp-shell
# (`python -m qemu.qmp.qmp_shell`, or `.venv/bin/qmp-shell`).  Commands are
# typed as `name key=value ...` (values are parsed as JSON where they can
# be) or as a whole JSON object; -v echoes what is sent.  The output of this
# script is examples/qmp-shell-session.txt, apart from qemu-io's timings.
#
#   sh examples/qmp-shell-session.sh        (from the repository root)
#
# qmp-shell's HMP mode (-H) asks `help` with cpu-index 0 at start-up; like
# QEMU started with -machine none, qmpd has no CPU 0 and refuses, so use the
# QMP mode shown here.  (A string argument cannot contain spaces in that
# mode, so qemu-io command lines are for scripts and socat.)
set -eu
dir=$(mktemp -d /tmp/qmpd-example-XXXXXX)
python=${PYTHON:-.venv/bin/python}
"$python" -m qmpd --socket "$dir/qmp.sock" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
while [ ! -S "$dir/qmp.sock" ]; do sleep 0.05; done   # appears once it accepts

"$python" -m qemu.qmp.qmp_shell -v "$dir/qmp.sock" <<'QMP'
blockdev-add driver=null-co node-name=disk0 size=1048576
blockdev-add driver=null-co node-name=disk1 size=2097152
blockdev-add driver=raw node-name=fmt0 file=disk0 cache.no-flush=true
blockdev-reopen options=[{"driver":"raw","node-name":"fmt0","file":"disk1"}]
x-debug-query-block-graph
blockdev-del node-name=disk1
blockdev-del node-name=fmt0
QMP
echo
