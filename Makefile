# Developer entry points.  Everything runs from the project's own .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall only when the dependencies can have changed.
STAMP  := $(VENV)/.stamp-install
SOCK   ?= qmp.sock

.PHONY: install run test bench conformance fuzz load clean iotests

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	@# pip leaves an editable project's sources uncompiled, and with
	@# PYTHONDONTWRITEBYTECODE set every start of qmpd would compile it again.
	$(BIN)/python -m compileall -q qmpd > /dev/null
	touch $@

run: install
	@echo "qmpd: serving QMP on ./$(SOCK) (Ctrl-C to stop). In another terminal:"
	@echo "    socat - UNIX-CONNECT:./$(SOCK)"
	@echo '    then type {"execute": "qmp_capabilities"} and {"execute": "query-version"}'
	$(BIN)/qmpd --socket $(SOCK)

test: install
	$(BIN)/ruff check qmpd tests benchmarks examples iotests
	@# Bytecode once, up front: with PYTHONDONTWRITEBYTECODE set (as on some CI
	@# images) every daemon a test starts would compile qmpd again.
	$(BIN)/python -m compileall -q qmpd tests > /dev/null
	@# The conformance replays mostly wait (scenario sleeps, quiet periods),
	@# so they run beside the other tests; their report follows those.
	@log=$$(mktemp); \
	$(BIN)/python -m pytest -m conformance -p no:cacheprovider > $$log 2>&1 & pid=$$!; \
	$(BIN)/python -m pytest -m "not conformance"; rest=$$?; \
	wait $$pid; conf=$$?; \
	echo "---- the conformance replays (pytest -m conformance) ----"; cat $$log; rm -f $$log; \
	[ $$rest -eq 0 ] && [ $$conf -eq 0 ]

# qmpd against QEMU 7.2's recordings: the oracle's table and summary line.
conformance: install
	$(BIN)/python -m tests.conformance.replay --verbose

bench: install
	@# Fresh bytecode first (see test): a stale .pyc recompiled by every daemon
	@# would be measured as time to greeting.
	$(BIN)/python -m compileall -q qmpd benchmarks > /dev/null
	$(BIN)/python -m benchmarks.bench

# The property-based (hypothesis) tests with many more examples; the last
# line counts the inputs fed (protocol and engine fuzzers).
fuzz: install
	$(BIN)/python -m pytest -p no:cacheprovider -m hypothesis --hypothesis-profile=fuzz

# The load test at full size: 64 clients x 1000 mixed commands each (also
# beside a client running long qemu-io reads at the reply limit), and 1000
# job + x-qmpd-reset cycles with the daemon's memory measured.
load: install
	QMPD_LOAD_CLIENTS=64 QMPD_LOAD_COMMANDS=1000 QMPD_RESET_CYCLES=1000 $(BIN)/python -m pytest -p no:cacheprovider tests/hardening/test_load.py tests/hardening/test_reset_leak.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# QEMU's own iotests through ./check against qmpd (not part of `make test`):
# make iotests QEMU_IOTESTS=DIR [QEMU_IMG_PROG=real] [QEMU_IO_PROG=real] [IOTESTS="245 030"]
iotests: install
	$(BIN)/python iotests/run.py $(IOTESTS)
