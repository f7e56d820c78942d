"""qemu-io's help as QEMU 10.0 prints it, where it differs from 7.2's
(:mod:`qmpd.img.qemu_io_help`): the commands that take a buffer gained ``-r``
(register the I/O buffer), and the zoned-device commands ``zone_*`` joined
the table (10.0's qemu-io-cmds.c; Linux builds have CONFIG_BLKZONED).

Recorded from QEMU 10.0.2 (``qemu-io <node> "help"`` and ``"help <command>"``
under HMP: tests/data/recorded/qemu-10.0/t-qemu-io-help-truncate.json); the
``zone_*`` commands have no extended help there.  Rows are
``name -> (alternative name, args, one-line summary, extended help)``.
"""

from __future__ import annotations

QEMU_IO_HELP: dict[str, tuple[str | None, str, str, str]] = {
    'aio_read': (None, '[-Ciqrv] [-P pattern] off len [len..]',
               'asynchronously reads a number of bytes',
               "\n asynchronously reads a range of bytes from the given offset\n\n Example:\n 'aio_read -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n\n Reads a segment of the currently open file, optionally dumping it to the\n standard output stream (with -v option) for subsequent inspection.\n The read is performed asynchronously and the aio_flush command must be\n used to ensure all outstanding aio requests have been completed.\n Note that due to its asynchronous nature, this command will be\n considered successful once the request is submitted, independently\n of potential I/O errors or pattern mismatches.\n -C, -- report statistics in a machine parsable format\n -i, -- treat request as invalid, for exercising stats\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -r, -- register I/O buffer\n -v, -- dump buffer to standard output\n\n"),
    'aio_write': (None, '[-Cfiqruz] [-P pattern] off len [len..]',
               'asynchronously writes a number of bytes',
               "\n asynchronously writes a range of bytes from the given offset source\n from multiple buffers\n\n Example:\n 'aio_write 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n\n Writes into a segment of the currently open file, using a buffer\n filled with a set pattern (0xcdcdcdcd).\n The write is performed asynchronously and the aio_flush command must be\n used to ensure all outstanding aio requests have been completed.\n Note that due to its asynchronous nature, this command will be\n considered successful once the request is submitted, independently\n of potential I/O errors or pattern mismatches.\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -i, -- treat request as invalid, for exercising stats\n -P, -- use different pattern to fill file\n -q, -- quiet mode, do not show I/O statistics\n -r, -- register I/O buffer\n -u, -- with -z, allow unmapping\n -z, -- write zeroes using blk_aio_pwrite_zeroes\n\n"),
    'read': ('r', '[-abCqrv] [-P pattern [-s off] [-l len]] off len',
               'reads a number of bytes at a specified offset',
               "\n reads a range of bytes from the given offset\n\n Example:\n 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file\n\n Reads a segment of the currently open file, optionally dumping it to the\n standard output stream (with -v option) for subsequent inspection.\n -b, -- read from the VM state rather than the virtual disk\n -C, -- report statistics in a machine parsable format\n -l, -- length for pattern verification (only with -P)\n -p, -- ignored for backwards compatibility\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -r, -- register I/O buffer\n -s, -- start offset for pattern verification (only with -P)\n -v, -- dump buffer to standard output\n\n"),
    'readv': (None, '[-Cqrv] [-P pattern] off len [len..]',
               'reads a number of bytes at a specified offset',
               "\n reads a range of bytes from the given offset into multiple buffers\n\n Example:\n 'readv -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n\n Reads a segment of the currently open file, optionally dumping it to the\n standard output stream (with -v option) for subsequent inspection.\n Uses multiple iovec buffers if more than one byte range is specified.\n -C, -- report statistics in a machine parsable format\n -P, -- use a pattern to verify read data\n -q, -- quiet mode, do not show I/O statistics\n -r, -- register I/O buffer\n -v, -- dump buffer to standard output\n\n"),
    'write': ('w', '[-bcCfnqruz] [-P pattern | -s source_file] off len',
               'writes a number of bytes at a specified offset',
               "\n writes a range of bytes from the given offset\n\n Example:\n 'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file\n\n Writes into a segment of the currently open file, using a buffer\n filled with a set pattern (0xcdcdcdcd).\n -b, -- write to the VM state rather than the virtual disk\n -c, -- write compressed data with blk_write_compressed\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -n, -- with -z, don't allow slow fallback\n -p, -- ignored for backwards compatibility\n -P, -- use different pattern to fill file\n -q, -- quiet mode, do not show I/O statistics\n -r, -- register I/O buffer\n -s, -- use a pattern file to fill the write buffer\n -u, -- with -z, allow unmapping\n -z, -- write zeroes using blk_pwrite_zeroes\n\n"),
    'writev': (None, '[-Cfqr] [-P pattern] off len [len..]',
               'writes a number of bytes at a specified offset',
               "\n writes a range of bytes from the given offset source from multiple buffers\n\n Example:\n 'writev 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n\n Writes into a segment of the currently open file, using a buffer\n filled with a set pattern (0xcdcdcdcd).\n -C, -- report statistics in a machine parsable format\n -f, -- use Force Unit Access semantics\n -P, -- use different pattern to fill file\n -q, -- quiet mode, do not show I/O statistics\n -r, -- register I/O buffer\n\n"),
    'zone_append': ('zap', 'offset len [len..]',
               'append write a number of bytes at a specified offset',
               ''),
    'zone_close': ('zc', 'offset len',
               'close a range of zones in zone block device',
               ''),
    'zone_finish': ('zf', 'offset len',
               'finish a range of zones in zone block device',
               ''),
    'zone_open': ('zo', 'offset len',
               'explicit open a range of zones in zone block device',
               ''),
    'zone_report': ('zrp', 'offset number',
               'report zone information',
               ''),
    'zone_reset': ('zrs', 'offset len',
               'reset a zone write pointer in zone block device',
               ''),
}
