"""The garbage collector in a long-running process (``ordex serve``, ``ordex venue``).

What the process makes while it starts (modules, the app's routes and schemas, the state
rebuilt from the store) lives as long as the process. Left in the collector's care, every full
collection walks all of it again: over 100 ms on a small machine, a stall of every order
waiting at that moment (the p99 of a paced run is made of such stalls). ``settle`` collects once,
when the process is ready, and then moves what survived out of the collector's sight
(``gc.freeze``), so that later full collections walk only what was made since. The domain's
records are immutable values that cannot form cycles, so they are not tracked at all
(``gc=False`` on their structs).
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what start-up left behind, then exempt the rest from future collections."""
    gc.collect()
    gc.freeze()
