"""Job time outside the engine: the clocks (clock.py) and the trio task that
enters jobs at their deadlines (runner.py)."""
