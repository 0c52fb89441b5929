"""The status bus: order events fanned out to live subscribers after they are committed."""
