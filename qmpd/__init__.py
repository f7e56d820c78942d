"""qmpd: a daemon that speaks QMP and emulates QEMU 7.2's block layer in memory.

Layers, each in its own sub-package:

* ``qmpd.protocol`` – sans-I/O QMP wire protocol (bytes in, messages out).
* ``qmpd.schema``   – JSON-Schema driven argument validation in QEMU's words,
  and ``query-qmp-schema`` generated from the same files.
* ``qmpd.engine``   – the synchronous, pure block graph (nodes, drivers,
  permissions, reopen transactions).
* ``qmpd.commands`` – QMP commands: arguments to engine calls, engine errors
  to QMP errors.
* ``qmpd.server``   – the trio UNIX-socket server and the CLI glue.
* ``qmpd.img``      – ``qmpd-img``, the user tool that writes image files.
"""

__version__ = "0.1.0"
