#!/bin/sh
# A raw QMP session with socat: start qmpd, send a few commands, print the
# bytes qmpd answers (exactly what QEMU would send: 10.0, qmpd's default
# release, or the one --qemu-version picks), let `quit` end it.
#
#   sh examples/socat-session.sh          (from the repository root, after `make install`)
set -eu
dir=$(mktemp -d /tmp/qmpd-example-XXXXXX)
trap 'rm -rf "$dir"' EXIT
# $QMPD is the command that starts qmpd (default: the project's venv).
qmpd=${QMPD:-.venv/bin/python -m qmpd}

$qmpd --socket "$dir/qmp.sock" &
while [ ! -S "$dir/qmp.sock" ]; do sleep 0.05; done   # appears once it accepts

socat - "UNIX-CONNECT:$dir/qmp.sock" <<'QMP'
{"execute": "qmp_capabilities"}
{"execute": "query-version", "id": 1}
{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "disk0"}, "id": 2}
{"execute": "query-named-block-nodes", "arguments": {"flat": true}, "id": 3}
{"execute": "stop", "id": 4}
{"execute": "quit"}
QMP
wait
