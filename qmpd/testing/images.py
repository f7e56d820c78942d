"""qmpd-img standing in for qemu-img and qemu-io, as iotests' helpers call them.

``qemu_img*`` and ``qemu_io*`` run ``qmpd-img`` (``$QMPD_IMG_PROG``) as a
child process and return its ``CompletedProcess`` or its JSON output;
``image_size``/``compare_images`` and the format checks
(``supported_formats``, ``skip_if_unsupported``) are built on them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from qmpd.launch import FORMATS
from qmpd.testing.filters import filter_qemu_io, filter_testfiles, log
from qmpd.testing.paths import child_env, imgfmt, program


def _tool(argv: list[str], check: bool, combine_stdio: bool) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, env=child_env(), text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT if combine_stdio else subprocess.PIPE)
    if check and res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, argv, res.stdout, res.stderr)
    return res


def qemu_img(*args: str, check: bool = True, combine_stdio: bool = True
             ) -> subprocess.CompletedProcess[str]:
    """``qmpd-img ARGS``; ``create`` without ``-f`` gets ``-f imgfmt``."""
    argv = list(args)
    if argv and argv[0] == "create" and "-f" not in argv:
        argv[1:1] = ["-f", imgfmt]
    return _tool(program("QMPD_IMG_PROG", "qmpd.img.cli") + argv, check, combine_stdio)


def qemu_img_create(*args: str) -> subprocess.CompletedProcess[str]:
    return qemu_img("create", *args)


def create_image(name: str, size: str | int, fmt: str | None = None) -> str:
    """Create image ``name`` (``fmt``, default imgfmt) of ``size``; returns ``name``."""
    qemu_img("create", "-q", "-f", fmt or imgfmt, name, str(size))
    return name


def qemu_io(*args: str, check: bool = True, combine_stdio: bool = True
            ) -> subprocess.CompletedProcess[str]:
    """``qmpd-img io ARGS`` (qemu-io); ``-f imgfmt`` is added unless ``-f`` is given."""
    argv = list(args)
    if "-f" not in argv:
        argv[0:0] = ["-f", imgfmt]
    return _tool(program("QMPD_IMG_PROG", "qmpd.img.cli") + ["io"] + argv, check, combine_stdio)


def qemu_io_log(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = qemu_io(*args, check=check)
    log(result.stdout, filters=[filter_testfiles, filter_qemu_io])
    return result


def qemu_img_json(*args: str) -> Any:
    """The tool's JSON output (also when ``check`` reports errors with status 2/3)."""
    res = qemu_img(*args, check=False, combine_stdio=False)
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        res.check_returncode()
        raise


def qemu_img_info(*args: str) -> Any:
    return qemu_img_json("info", "--output", "json", *args)


def qemu_img_map(*args: str) -> Any:
    return qemu_img_json("map", "--output", "json", *args)


def qemu_img_check(*args: str) -> Any:
    return qemu_img_json("check", "--output", "json", *args)


def image_size(img: str) -> int:
    """An image's virtual size (``qemu-img info``)."""
    value = qemu_img_info("-f", imgfmt, img)["virtual-size"]
    if not isinstance(value, int):
        raise TypeError(f"Expected 'int' for 'virtual-size', got {value!r}")
    return value


def compare_images(img1: str, img2: str, fmt1: str | None = None,
                   fmt2: str | None = None) -> bool:
    """``qemu-img compare``: True if identical (status 0), False if not (1)."""
    res = qemu_img("compare", "-f", fmt1 or imgfmt, "-F", fmt2 or imgfmt, img1, img2,
                   check=False)
    if res.returncode in (0, 1):
        return res.returncode == 0
    res.check_returncode()
    return False


def supported_formats(read_only: bool = False) -> list[str]:
    """The block drivers qmpd has (``-drive format=help``)."""
    return list(FORMATS)


def skip_if_unsupported(required_formats: Any = (), read_only: bool = False) -> Any:
    """Decorator: skip a test case whose formats qmpd lacks (iotests' own)."""
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(test_case: Any, *args: Any, **kwargs: Any) -> Any:
            fmts = required_formats(test_case) if callable(required_formats) \
                else required_formats
            missing = sorted(set(fmts) - set(supported_formats(read_only)))
            if missing:
                test_case.skipTest(f"formats {missing} are not whitelisted")
            return func(test_case, *args, **kwargs)
        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper
    return decorator


def verify_quorum() -> None:
    """qmpd has quorum: nothing to skip."""
