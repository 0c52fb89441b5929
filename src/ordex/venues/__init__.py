"""Venue adapters: the simulated exchange (in-process or over FIX) and the Venue protocol."""
