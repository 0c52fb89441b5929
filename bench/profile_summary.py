"""Where the samples of a py-spy profile go: shares by module, as self time (the frame on top)
and as inclusive time (anywhere on the stack), and the hottest functions.

Reads ``py-spy record --format raw`` output (one collapsed stack per line, then its count)::

    python -m bench.profile_summary server.txt [--top 10]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE = re.compile(r"(?:site|dist)-packages/(?P<pkg>[^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<mod>[^/]+)")


def module_of(path: str) -> str:
    """A short name for the code a frame's file belongs to: ``ordex.store``, ``sqlalchemy``,
    ``asyncio``..."""
    if "/ordex/" in path or path.startswith("ordex/"):
        parts = path.split("ordex/", 1)[1].split("/")
        return "ordex." + (parts[0].removesuffix(".py") if parts else "")
    site = _SITE.search(path)
    if site:
        return site.group("pkg").removesuffix(".py").split(".")[0]
    std = _STDLIB.search(path)
    if std:
        return std.group("mod").removesuffix(".py")
    if not path.startswith("/") and "/" in path:  # py-spy shortens paths under sys.path
        return path.split("/", 1)[0]
    return Path(path).name.removesuffix(".py") or path


@dataclass
class Profile:
    samples: int
    self_by_module: Counter[str]
    inclusive_by_module: Counter[str]
    self_by_function: Counter[str]


def read(path: Path) -> Profile:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for raw in stack.split(";"):
            m = _FRAME.match(raw.strip())
            if m:
                frames.append((m.group("name"), m.group("path")))
        if not frames:
            continue
        total += count
        name, file = frames[-1]
        own[module_of(file)] += count
        functions[f"{name} ({module_of(file)})"] += count
        for module in {module_of(f) for _, f in frames}:
            anywhere[module] += count
    return Profile(total, own, anywhere, functions)


def summary_lines(profile: Profile, top: int = 10) -> list[str]:
    if not profile.samples:
        return ["   (no samples)"]
    n = profile.samples

    def share(counter: Counter[str]) -> str:
        return ", ".join(f"{k} {v / n * 100:.1f}%" for k, v in counter.most_common(top))

    return [f"   {n} samples (the thread holding the GIL)",
            f"   self, by module:      {share(profile.self_by_module)}",
            f"   inclusive, by module: {share(profile.inclusive_by_module)}",
            f"   hottest functions:    {share(profile.self_by_function)}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_summary")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args(argv)
    for f in args.files:
        print(f"{f}:")
        print("\n".join(summary_lines(read(f), args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
