"""The pure domain core: no I/O, no clocks, no randomness of its own."""
