"""make bench: qmpd performance, against QEMU 7.2 when installed."""
