"""Service layer: one handler per command, and the read side."""
