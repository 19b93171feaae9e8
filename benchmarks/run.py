"""Run the benchmark suite: every figure beside its baselines, measured in one run.

    python benchmarks/run.py            # the full suite (a few minutes)
    python benchmarks/run.py --quick    # a CI-sized smoke run (under a minute)
    python benchmarks/run.py --only demo    # figure 5 alone: ``aionas demo``, timed
    python benchmarks/run.py --only search  # figure 6 alone: a search, beside Optuna's

Figure 1 adds NNI 3.0's real engine as a baseline when an interpreter with ``nni``
is found: ``--nni-python PATH``, else ``$AIONAS_BENCH_NNI_PYTHON``, else
``.venv-nni/bin/python`` if it exists (``--nni-python ''`` turns it off).

Prints a table and writes ``benchmarks/results/latest.json`` (``latest-quick.json``
with ``--quick``, so a smoke run never overwrites the full figures; with ``--only``,
the figures' names go into the file name, ``latest-demo.json`` say, so a partial run
never overwrites them either). See ``benchmarks/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks import demo, latency, memory, overhead, reports, search  # noqa: E402
from benchmarks._common import Result  # noqa: E402

Figure = Callable[..., Awaitable[list[Result]]]

#: (module, backends it runs on)
FIGURES: list[tuple[str, Figure, tuple[str, ...]]] = [
    ("overhead", overhead.measure, ("asyncio", "trio")),
    ("reports", reports.measure, ("asyncio", "trio")),
    ("latency", latency.measure, ("asyncio",)),
    ("memory", memory.measure, ("asyncio",)),
    ("demo", demo.measure, ("asyncio",)),
    ("search", search.measure, ("asyncio", "trio")),
]
#: Repetitions (full run, ``--quick``) of figures that do not take the default (5, 2).
SLOW_REPEAT: dict[str, tuple[int, int]] = {"demo": (3, 1), "search": (5, 1)}


def _format(value: float, unit: str) -> str:
    if unit in {"events", "rows/s", "models"}:
        return f"{value:,.0f} {unit}"
    if unit == "id":
        return f"#{value:.0f}"
    if unit == "accuracy":
        return f"{value:.4f}"
    return f"{value:,.2f} {unit}"


NNI_PYTHON_ENV = "AIONAS_BENCH_NNI_PYTHON"
NNI_PYTHON_DEFAULT = ROOT / ".venv-nni" / "bin" / "python"


def find_nni(option: str | None, console: Console) -> tuple[Path | None, str | None]:
    """The interpreter to run NNI's engine with, and its ``nni`` version (None, None if none).

    An explicit ``--nni-python`` or ``$AIONAS_BENCH_NNI_PYTHON`` that does not work
    is an error; a missing default interpreter only leaves the NNI rows out.
    """
    chosen = option if option is not None else os.environ.get(NNI_PYTHON_ENV)
    if chosen == "":
        return None, None
    if chosen is None and not NNI_PYTHON_DEFAULT.exists():
        console.log("no .venv-nni/bin/python: figure 1 runs without NNI's engine")
        return None, None
    python = Path(chosen) if chosen is not None else NNI_PYTHON_DEFAULT
    probe = [str(python), "-c", "from importlib.metadata import version; print(version('nni'))"]
    try:
        found = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        if chosen is None:
            console.log(f"{python} has no nni ({error}): figure 1 runs without NNI's engine")
            return None, None
        raise SystemExit(
            f"--nni-python / ${NNI_PYTHON_ENV}: {python} cannot run nni: {error}"
        ) from None
    return python, found.stdout.strip()


def default_output(only: list[str] | None, quick: bool) -> Path:
    """Where a run writes without ``--output``: ``latest.json``, ``latest-quick.json``,
    or with ``--only``, a name of its own (``latest-demo.json``), never a full run's file."""
    parts = ["latest", *sorted(set(only or ())), *(["quick"] if quick else [])]
    return ROOT / "benchmarks" / "results" / ("-".join(parts) + ".json")


def figure_repeat(name: str, quick: bool, asked: int | None) -> int:
    """How many times figure ``name`` repeats: ``--repeat`` if given, else its default."""
    if asked is not None:
        return asked
    full, smoke = SLOW_REPEAT.get(name, (5, 2))
    return smoke if quick else full


def render(results: list[Result], console: Console) -> None:
    table = Table(title="aionas benchmarks (medians; ratios measured within one run)")
    for column in ("figure", "measurement", "backend", "value", "ratio", "target", "met"):
        table.add_column(column, justify="right" if column in {"value", "ratio"} else "left")
    for r in results:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x {r.baseline}"
        met = {True: "yes", False: "NO", None: ""}[r.met]
        table.add_row(r.figure, r.name, r.backend, _format(r.value, r.unit), ratio, r.target, met)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a CI-sized smoke run")
    parser.add_argument("--repeat", type=int, help="repetitions per figure (median reported)")
    parser.add_argument("--only", action="append", choices=[f[0] for f in FIGURES])
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the results (default: benchmarks/results/latest.json, "
        "or latest-quick.json with --quick)",
    )
    parser.add_argument(
        "--nni-python",
        help="a Python with nni==3.0, for NNI's real engine as a baseline of figure 1 "
        f"(default: ${NNI_PYTHON_ENV}, else .venv-nni/bin/python if it exists; '' for none)",
    )
    args = parser.parse_args(argv)
    repeat = figure_repeat("", args.quick, args.repeat)

    console = Console(width=None if sys.stdout.isatty() else 150)
    nni_python, nni_version = None, None
    if not args.only or "overhead" in args.only:
        nni_python, nni_version = find_nni(args.nni_python, console)
        if nni_python is not None:
            console.log(f"NNI {nni_version}'s engine as a baseline, run by {nni_python}")
    results: list[Result] = []
    repeats: dict[str, int] = {}
    started = time.perf_counter()
    for name, measure, backends in FIGURES:
        if args.only and name not in args.only:
            continue
        repeats[name] = figure_repeat(name, args.quick, args.repeat)
        for backend in backends:
            console.log(f"figure {name} on {backend} ...")
            gc.collect()
            options: dict[str, Any] = {"quick": args.quick, "repeat": repeats[name]}
            if name == "overhead":
                options["nni_python"] = nni_python
            results.extend(anyio.run(partial(measure, backend, **options), backend=backend))
    elapsed = time.perf_counter() - started

    render(results, console)
    judged = [r for r in results if r.met is not None]
    met = sum(1 for r in judged if r.met)
    console.print(f"targets met: {met}/{len(judged)}; suite took {elapsed:.1f} s")

    if args.output is None:
        args.output = default_output(args.only, args.quick)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeat": repeat,
        "repeat_by_figure": repeats,
        "seconds": round(elapsed, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "switch_interval_s": sys.getswitchinterval(),
        },
        "versions": {
            **{name: version(name) for name in ("aionas", "anyio", "trio")},
            **({"nni": nni_version} if nni_version else {}),
            **({"optuna": version("optuna")} if "search" in repeats else {}),
        },
        "results": [r.as_dict() for r in results],
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    console.print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
