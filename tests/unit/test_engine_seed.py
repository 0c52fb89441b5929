"""The engine's random numbers (the jitter of send retries) come from the ``seed`` setting:
two engines built with the same seed draw the same backoffs, so a run can be replayed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ordex.bootstrap import build
from ordex.cli import parser
from ordex.config import Settings
from ordex.engine.engine import ExecutionEngine
from ordex.venues.simulated import InProcessVenue
from tests.unit.test_sim_support import exchange


def engine_of(data: Path, seed: int | None) -> ExecutionEngine:
    settings = Settings(data_dir=data, seed=seed, seed_demo=False)
    engine = build(settings, venue=InProcessVenue(exchange(), tick_interval=None)).engine
    assert engine is not None
    return engine


def backoffs(engine: ExecutionEngine, attempts: int = 8) -> list[timedelta]:
    return [engine.policy.backoff(n, engine.rng) for n in range(1, attempts + 1)]


def test_engines_built_with_the_same_seed_draw_the_same_backoffs(tmp_path: Path) -> None:
    first, second = engine_of(tmp_path / "a", 42), engine_of(tmp_path / "b", 42)
    drawn = backoffs(first)
    assert drawn == backoffs(second)
    assert len(set(drawn)) == len(drawn), "jittered: no two draws alike"
    assert backoffs(engine_of(tmp_path / "c", 43)) != drawn


def test_without_a_seed_each_engine_draws_its_own(tmp_path: Path) -> None:
    assert backoffs(engine_of(tmp_path / "a", None)) != backoffs(engine_of(tmp_path / "b", None))


def test_the_seed_is_read_from_the_environment_and_the_serve_flag(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().seed is None
    monkeypatch.setenv("ORDEX_SEED", "11")
    assert Settings().seed == 11
    assert parser().parse_args(["serve", "--seed", "5"]).seed == 5
    assert parser().parse_args(["serve"]).seed is None
