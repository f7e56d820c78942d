"""Replays recorded QEMU 7.2 transcripts against qmpd (see replay.py)."""
