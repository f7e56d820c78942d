"""Job runner: the trio side of block jobs (time, sleeping, waking)."""
