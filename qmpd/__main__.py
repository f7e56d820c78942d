"""Entry point for ``python -m qmpd``."""

from qmpd.cli import main

raise SystemExit(main())
