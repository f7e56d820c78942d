"""qmpd-img: the host-side image tool (stand-in for ``qemu-img create`` and ``qemu-io``).

qmpd itself never writes host files; this package is the one user tool that
does, and only the files named on its command line.  Tests and scenario
setups use it so that CI needs no QEMU installation.
"""
