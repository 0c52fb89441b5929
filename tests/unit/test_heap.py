"""What a served process leaves to the garbage collector (see ``ordex.heap``)."""

from __future__ import annotations

import gc
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

import ordex.domain
from tests.unit.test_controls import order

RECORD_MODULES = [m.name for m in pkgutil.iter_modules(ordex.domain.__path__, "ordex.domain.")]
RECORD_MODULES += ["ordex.venues.base", "ordex.services.messages"]


def _structs() -> list[type[msgspec.Struct]]:
    found: dict[str, type[msgspec.Struct]] = {}
    for name in RECORD_MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if issubclass(cls, msgspec.Struct) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return list(found.values())


@pytest.mark.parametrize("cls", _structs(), ids=lambda c: c.__qualname__)
def test_records_are_untracked_values(cls: type[msgspec.Struct]) -> None:
    config = cls.__struct_config__
    assert config.frozen and not config.gc, f"{cls.__qualname__} should be frozen, gc=False"


def test_an_order_is_invisible_to_the_collector() -> None:
    made = order()
    assert not gc.is_tracked(made)


def test_settle_leaves_only_what_is_made_afterwards_to_the_collector(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import gc
        import sys
        from ordex.api.app import create_app
        from ordex.config import Settings
        from ordex import heap
        app = create_app(Settings(data_dir=sys.argv[1], seed_demo=False))
        before = len(gc.get_objects())
        heap.settle()
        after = len(gc.get_objects())
        kept = [[i] for i in range(1000)]
        later = len(gc.get_objects())
        print(before, after, gc.get_freeze_count(), later - after)
    """)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    before, after, frozen, made = (int(x) for x in out)
    assert before > 50_000 and frozen > 50_000
    assert after < 1_000
    assert made >= 1_000  # objects made afterwards are still collected
