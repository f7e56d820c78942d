"""An iotests-style harness for scripts and tests that drive qmpd.

QEMU's block tests (tests/qemu-iotests/iotests.py, on top of
python/qemu/machine/machine.py) start QEMU with a ``VM`` object and talk
QMP through it.  This module gives the same shape over qmpd, so an iotests
script ports with few changes::

    from qmpd import testing as iotests
    from qmpd.testing import log

    base, top = iotests.file_path("base.qcow2", "top.qcow2")
    iotests.qemu_img_create("-f", "qcow2", base, "1M")
    iotests.qemu_io("-f", "qcow2", base, "-c", "write -P 0x11 0 64k")
    iotests.qemu_img_create("-f", "qcow2", "-b", base, "-F", "qcow2", top)

    with iotests.VM() as vm:
        vm.launch()
        vm.qmp_log("blockdev-add", driver="qcow2", node_name="top",
                   file={"driver": "file", "filename": top})
        iotests.assert_qmp(vm.qmp("blockdev-del", node_name="nope"),
                           "error/class", "GenericError")
        log(vm.hmp_qemu_io("top", "read -P 0x11 0 64k"))

What is the same as iotests / QEMUMachine:

* ``VM.qmp(cmd, args_dict=None, conv_keys=None, **args)`` returns the whole
  reply (``{"return": ...}`` or ``{"error": ...}``); keyword names have
  ``_`` turned into ``-`` (top level only, as QEMU's ``_qmp_args``);
  ``VM.command()`` returns the value or raises :class:`QMPError`.
* ``qmp_log``, ``hmp``, ``hmp_qemu_io``, ``get_qmp_event``,
  ``get_qmp_events``, ``get_qmp_events_filtered``, ``event_wait``,
  ``events_wait`` (with QEMUMachine's ``event_match`` sub-dict matching),
  ``get_log`` (qmpd's stdout and stderr, after shutdown),
  ``run_job``, ``blockdev_create``, ``node_info``, ``assert_block_path``,
  ``launch``/``shutdown`` and use as a context manager.
* Module functions ``log``, ``filter_qmp``, ``filter_qmp_event``,
  ``filter_generated_node_ids``, ``filter_qmp_generated_node_ids``,
  ``filter_testfiles``, ``filter_qmp_testfiles``, ``filter_qemu_io``
  (and ``filter_qmp_qemu_io`` for replies),
  ``qemu_img``, ``qemu_img_create``, ``qemu_io``, ``qemu_io_log``,
  ``file_path``, ``imgfmt``; ``QMPTestCase`` with ``dictpath``,
  ``assert_qmp``, ``assert_qmp_absent``, ``assert_no_active_block_jobs``,
  ``assert_has_block_node``.  ``assert_qmp`` and ``assert_qmp_absent`` also
  exist as plain functions, for pytest.

What differs:

* ``VM()`` starts ``python -m qmpd --socket SOCK`` (or ``$QMPD_PROG``),
  with ``--extensions`` on by default; there is no guest, so
  ``add_drive``/``add_device``/``-drive`` and friends do not exist: build
  the graph with ``blockdev-add``.  ``add_blockdev`` and ``add_object``
  exist, and send ``blockdev-add``/``object-add`` right after launch
  (``qmp_to_opts`` strings carry their dict, so nothing is lost).  Extra qmpd options go in
  ``VM(args=[...])``.  The socket lives in a short directory under /tmp
  (AF_UNIX paths stop at 107 bytes), not in ``$SOCK_DIR``.
* The QMP client is a small blocking one built in (no qemu.qmp needed);
  timeouts raise :class:`TimeoutError` (asyncio.TimeoutError is the same
  class on Python 3.11).
* ``hmp_qemu_io`` returns the qemu-io output in the reply's ``return``:
  QEMU prints it on its own stdout and returns ``""``.  qmpd does the same
  only when started with ``VM(args=["--hmp-output", "stdout"])``.  With
  ``use_log=True`` the logged reply goes through ``filter_qmp_qemu_io`` so
  that qemu-io's timings do not make the log vary.
* Image tools are ``qmpd-img`` and ``qmpd-img io`` (``$QMPD_IMG_PROG``),
  which produce QEMU 7.2's images and output but know only qcow2 and raw,
  and of qemu-img's subcommands only ``create``, ``info``, ``map``,
  ``compare`` and ``bitmap`` (no check/convert/measure).  ``qemu_img``/``qemu_io`` return a
  ``subprocess.CompletedProcess`` and raise on a non-zero status unless
  ``check=False``, as iotests does.  ``imgfmt`` is ``$IMGFMT`` or qcow2.
* ``file_path`` puts files in ``$TEST_DIR`` or a private temporary
  directory removed at exit; ``filter_testfiles`` turns that directory into
  ``TEST_DIR``.
* ``main``, ``script_main``, ``script_initialize`` and ``notrun`` check
  ``supported_fmts``/``supported_protocols`` (qcow2 or raw, on ``file``)
  and run the test, but there is no ``.out`` comparison: run the script and
  compare its output yourself.  ``test_dir`` is a module attribute as in
  iotests.
* Extras for qmpd: ``VM.reset()`` (``x-qmpd-reset``: an empty graph without
  restarting) and ``VM.clock_step(ns)`` (``x-qmpd-clock-step``, which makes
  job progress deterministic where the daemon implements it).

The package's modules: ``paths`` (``$IMGFMT``, ``$TEST_DIR``, ``file_path``,
the children's command lines), ``filters`` (``log`` and ``filter_*``),
``images`` (``qemu_img*``, ``qemu_io*``), ``asserts`` (``dictpath``,
``assert_qmp``), ``qmp`` (the blocking QMP client and its errors), ``vm``
(``VM``) and ``case`` (``QMPTestCase``, ``main`` and the other entry
points).  Import from the package, not from them: this module re-exports
iotests' names.
"""

from __future__ import annotations

from typing import Any

from qmpd.testing.asserts import assert_qmp, assert_qmp_absent, dictpath
from qmpd.testing.case import (
    QMPTestCase,
    Timeout,
    main,
    notrun,
    script_initialize,
    script_main,
)
from qmpd.testing.filters import (
    filter_generated_node_ids,
    filter_qemu_io,
    filter_qmp,
    filter_qmp_event,
    filter_qmp_generated_node_ids,
    filter_qmp_imgfmt,
    filter_qmp_qemu_io,
    filter_qmp_testfiles,
    filter_testfiles,
    log,
    ordered_qmp,
)
from qmpd.testing.images import (
    compare_images,
    create_image,
    image_size,
    qemu_img,
    qemu_img_check,
    qemu_img_create,
    qemu_img_info,
    qemu_img_json,
    qemu_img_map,
    qemu_io,
    qemu_io_log,
    skip_if_unsupported,
    supported_formats,
    verify_quorum,
)
from qmpd.testing.paths import (
    FilePath,
    aiomode,
    cachemode,
    file_path,
    imgfmt,
    try_remove,
)
from qmpd.testing.paths import scratch_dir as _scratch_dir
from qmpd.testing.qmp import QMPError, QMPMessage, VMError
from qmpd.testing.vm import VM, launched_vm

__all__ = [
    "FilePath", "QMPError", "QMPMessage", "QMPTestCase", "Timeout", "VM", "VMError",
    "aiomode", "assert_qmp", "assert_qmp_absent", "cachemode", "compare_images",
    "create_image", "dictpath", "file_path", "filter_generated_node_ids", "filter_qemu_io",
    "filter_qmp", "filter_qmp_event", "filter_qmp_generated_node_ids", "filter_qmp_imgfmt",
    "filter_qmp_qemu_io", "filter_qmp_testfiles", "filter_testfiles", "image_size", "imgfmt",
    "launched_vm", "log", "main", "notrun", "ordered_qmp", "qemu_img", "qemu_img_check",
    "qemu_img_create", "qemu_img_info", "qemu_img_json", "qemu_img_map", "qemu_io",
    "qemu_io_log", "script_initialize", "script_main", "skip_if_unsupported",
    "supported_formats", "try_remove", "verify_quorum",
]


def __getattr__(name: str) -> Any:
    # iotests.test_dir / sock_dir are module variables there; here the
    # directory is made on first use (PEP 562).
    if name in ("test_dir", "sock_dir"):
        return _scratch_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
