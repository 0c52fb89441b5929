"""Fault switches of a simulated exchange, changeable at run time (admin endpoint, tests).

The exchange itself applies ``lose_acks``, ``reject_after_partial`` and ``visibility_lag``; the
adapters apply ``ack_delay``, ``down``, ``refuse_sends`` and ``stall_reports`` (the FIX venue
applies ``stall_reports`` but not ``refuse_sends``); ``drop_connection_mid_execution`` is for the
TCP adapter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(slots=True)
class Faults:
    ack_delay: float = 0.0  # seconds the adapter waits before delivering a submit's reports
    lose_acks: int = 0  # the next N orders are placed but their ACK report is dropped
    reject_after_partial: bool = False  # the next order that fills partially gets the rest rejected
    down: bool = False  # adapters raise VenueUnavailable on every call
    drop_connection_mid_execution: bool = False  # TCP adapter: drop the link between reports
    visibility_lag: float = 0.0  # seconds after receipt during which query() returns None
    refuse_sends: int = 0  # adapters refuse the next N new orders as busy (VenueUnavailable)
    stall_reports: bool = False  # reports stop flowing while the session stays up

    def update(self, **changes: object) -> None:
        """Set some switches by name; unknown names or wrong types raise ValueError."""
        kinds = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in kinds:
                raise ValueError(f"unknown fault switch {name!r}")
            if kinds[name] == "bool":
                ok = isinstance(value, bool)
            elif kinds[name] == "int":
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
                value = float(value) if ok else value  # type: ignore[arg-type]
            if not ok:
                raise ValueError(f"fault switch {name!r} cannot be set to {value!r}")
            setattr(self, name, value)

    def reset(self) -> None:
        """Switch every fault off."""
        for f in fields(self):
            setattr(self, f.name, f.default)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
