"""Preallocation of a qcow2 image's clusters, at creation and when it grows.

``preallocate_metadata`` (preallocation=metadata: L2 entries for every
cluster, no data written) and ``preallocate_space`` (falloc/full: a new
refcount area and the data clusters after it), as QEMU 7.2's preallocate_co
and qcow2_co_truncate lay them out.
"""

from __future__ import annotations

from qmpd.qcow2.image import Qcow2Image
from qmpd.qcow2.mapping import HostAllocation
from qmpd.qcow2.spec import REQUEST_MAX_BYTES


def preallocate_metadata(img: Qcow2Image, size: int, start: int = 0) -> None:
    """preallocation=metadata: allocate every cluster from ``start`` on
    (qcow2 preallocate_co; ``start`` is the old size when growing)."""
    offset = start
    host_end = 0
    while offset < size:
        n = min(size - offset, REQUEST_MAX_BYTES)
        host, cur, metas = img.mapper.alloc_host_offset(offset, n)
        for m in metas:
            # perform_cow() without guest data: the COW areas alone are
            # written (zeros: no backing file is attached during create).
            for lo, hi in ((m.cow_start_from, m.cow_start_to), (m.cow_end_from, m.cow_end_to)):
                if hi > lo:
                    img.store.write(m.alloc_offset + lo, bytes(hi - lo))
            img.mapper.link(m, prealloc=True)
        host_end = max(host_end, host + cur)
        offset += cur
    img.flush()
    # QEMU extends the file to the end of the last preallocated cluster.
    if host_end > img.store.size():
        img.store.truncate(host_end)


def preallocate_space(img: Qcow2Image, size: int, start: int = 0) -> None:
    """preallocation=falloc/full: qcow2_co_truncate's allocation of data
    clusters for the guest range from ``start`` (the old size) to ``size``.

    New self-describing refcount structures go after the last used cluster,
    the data area follows them, and L2 tables are filled in afterwards (they
    land in whatever clusters are free first, e.g. the old refcount table).
    """
    geo = img.geo
    cs = geo.cluster_size
    old_file_clusters = -(-img.store.size() // cs)
    last = img.refcounts.last_used_cluster(old_file_clusters)
    old_file_size = (last + 1) * cs if last >= 0 else old_file_clusters * cs
    first = start // cs * cs
    nb_data = (-(-size // cs) * cs - first) // cs
    nb_l2 = -(-nb_data // (cs // geo.l2_entry_size)) + 1
    allocation_start = img.refcounts.area(old_file_size, nb_data + nb_l2, True, 0, 0)
    img.allocator.alloc_at(allocation_start, nb_data)
    img.flush()
    new_file_size = allocation_start + nb_data * cs
    if new_file_size > img.store.size():
        img.store.truncate(new_file_size)
    host_offset, guest_offset = allocation_start, first
    while nb_data:
        l2_index = (guest_offset >> geo.cluster_bits) & (geo.l2_size - 1)
        n = min(nb_data, geo.l2_size - l2_index)
        img.mapper.link(HostAllocation(guest_offset, host_offset, n, 0, 0, n * cs, n * cs),
                        prealloc=True)
        guest_offset += n * cs
        host_offset += n * cs
        nb_data -= n
    img.flush()
