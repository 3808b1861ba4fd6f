"""Interleaved before/after runs of one benchmark script; prints one JSON document.

Runs ``bench/SCRIPT ARGS`` in two checkouts of Tideflow (``--before`` and
``--after``, each with its own ``.venv``), alternating before/after ``--rounds``
times so that the machine's load falls on both alike. Every numeric leaf of the
scripts' JSON output is collected under its dotted path; the answer gives each
figure's median per checkout and the ratio after/before. Which figures matter
(and whether higher is better) is for the reader: the ratio is only arithmetic.

Run: ``python bench/ab.py --before ../old --after . --rounds 3 -- runtime.py --parts seq3``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any


def numeric_leaves(value: Any, prefix: str = "") -> dict[str, float]:
    """Every int/float leaf of a JSON value, keyed by its dotted path."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {prefix: float(value)}
    out: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(numeric_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.update(numeric_leaves(item, f"{prefix}[{index}]"))
    return out


def run_once(tree: Path, script: str, args: list[str]) -> dict[str, float]:
    """Run ``bench/script`` in ``tree`` with that tree's virtualenv; its numeric figures."""
    python = tree / ".venv" / "bin" / "python"
    completed = subprocess.run(
        [str(python), str(tree / "bench" / script), *args],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{tree / '.venv' / 'bin'}:{os.environ['PATH']}"},
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"{script} failed in {tree} (exit {completed.returncode})")
    start = completed.stdout.find("{")
    return numeric_leaves(json.loads(completed.stdout[start:]))


def summarize(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Median per checkout and the after/before ratio of every figure both runs gave."""
    keys = sorted(set.intersection(*(set(r) for side in runs.values() for r in side)))
    figures: dict[str, Any] = {}
    for key in keys:
        before = statistics.median(r[key] for r in runs["before"])
        after = statistics.median(r[key] for r in runs["after"])
        figures[key] = {
            "before": before,
            "after": after,
            "ratio": round(after / before, 3) if before else None,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = [a for a in options.args if a != "--"]
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(options.rounds):
        for side in ("before", "after"):
            tree = getattr(options, side).resolve()
            runs[side].append(run_once(tree, options.script, args))
    print(
        json.dumps(
            {
                "script": options.script,
                "args": args,
                "rounds": options.rounds,
                "load_average": os.getloadavg(),
                "figures": summarize(runs),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
