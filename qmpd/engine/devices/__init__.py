"""Guest devices as users of the block graph.

qmpd models as much of a ``-M pc -nodefaults`` machine as block devices need:
:mod:`.model` (devices, their BlockBackends, the machine), :mod:`.backends`
(a device's BlockBackend on the graph), :mod:`.qdev` (device_add/device_del),
:mod:`.pci` and :mod:`.scsi` (addresses on their buses), :mod:`.query`.
"""
