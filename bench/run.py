"""Run benchmarks and store their results as dated JSON in bench/results/.

    python -m bench.run [--quick] NAME...        # NAME: transitions, import, timers (or all)
    python -m bench.report                       # then rewrite BENCHMARKS.md's generated sections

Each benchmark measures its floor (and peer) in the same run, interleaved, over
several rounds; ``--quick`` runs smaller sizes (marked as such in the result,
and the report says so).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(
    os.environ.get("RECTIFLOW_BENCH_RESULTS", Path(__file__).resolve().parent / "results")
)
BENCHMARKS = {
    "transitions": "bench.transitions",
    "import": "bench.import_bench",
    "timers": "bench.timers",
    "api": "bench.api",
}


def store(out: dict[str, Any], *, quick: bool, directory: Path = RESULTS) -> Path:
    """Write one result as ``<UTC date and time>-<name>.json``; return its path."""
    out = {**out, "quick": quick}
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    path = directory / f"{stamp}-{out['name']}.json"
    n = 1
    while path.exists():  # two results of one name within a second
        n += 1
        path = directory / f"{stamp}.{n}-{out['name']}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help=", ".join([*BENCHMARKS, "all"]))
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"running {name}{' (quick)' if args.quick else ''}...", file=sys.stderr, flush=True)
        for out in module.run(args.quick):
            path = store(out, quick=args.quick)
            summary = json.dumps(out["summary"], default=str)
            print(
                f"{out['name']}: {summary}\n  -> {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
