"""ordex: an order execution service."""

__version__ = "0.1.0"
