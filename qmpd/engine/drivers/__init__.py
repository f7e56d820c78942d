"""Block drivers, one module each; :mod:`.registry` lists them and
:mod:`.base` is the interface they implement (QEMU's ``BlockDriver``)."""
