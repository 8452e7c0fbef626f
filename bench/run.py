"""Run every benchmark (`bench/bench_*.py`), print the figures, write bench/RESULTS.md.

    .venv/bin/python -m bench.run              # all of them (`make bench`)
    .venv/bin/python -m bench.run timers tick  # some, by name (RESULTS.md then lists only those)

Each benchmark module exposes `main() -> list[dict]`, one dict per figure: {benchmark, metric,
value, unit, baseline, ratio, target, ok}. A benchmark that raises, or returns no rows, is
reported as failed and the others still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import fmt, row, show

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
COLUMNS = ("benchmark", "metric", "value", "unit", "baseline", "ratio", "target", "ok")


def discover(names: list[str]) -> list[str]:
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if not names:
        return found
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in names]
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(found)})")
    return [n for n in found if n in wanted]


def run_one(module_name: str) -> tuple[list[dict], float, bool]:
    """Import and run one benchmark; its rows, how long it took, and whether it worked."""
    short = module_name.removeprefix("bench_")
    t0 = time.monotonic()
    argv = sys.argv
    sys.argv = [str(HERE / f"{module_name}.py")]  # a main() that parses arguments sees none
    try:
        module = importlib.import_module(f"bench.{module_name}")
        rows = module.main()
        if not rows:
            raise RuntimeError("main() returned no rows")
        rows = [{c: r.get(c) for c in COLUMNS} for r in rows]
        ok = True
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        rows = [row(short, "FAILED: " + f"{type(exc).__name__}: {exc}"[:200], float("nan"), "",
                    ok=False)]
        ok = False
    finally:
        sys.argv = argv
    return rows, time.monotonic() - t0, ok


def machine() -> dict[str, str]:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    mem_kb = first("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "unknown"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "CPU": first("/proc/cpuinfo", "model name"),
        "Cores": str(os.cpu_count()),
        "RAM": ram,
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "SQLite": __import__("sqlite3").sqlite_version,
        "OS": f"{platform.system()} {platform.release()}",
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Load average at start (1, 5, 15 min)": load,
    }


def cell(value: object) -> str:
    if value is None:
        return ""
    if value is True:
        return "yes"
    if value is False:
        return "**no**"
    return fmt(value).replace("|", "\\|")


def markdown(rows: list[dict], info: dict[str, str], timings: dict[str, float]) -> str:
    lines = ["# Benchmark results", "",
             ("Written by `python -m bench.run` (`make bench`); each figure comes from "
              "`bench/bench_<name>.py`, whose docstring says what it measures."), ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    lines += ["- **Run time**: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for r in rows:
        lines.append("| " + " | ".join(cell(r.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    names = discover(sys.argv[1:] if argv is None else argv)
    info = machine()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    rows: list[dict] = []
    timings: dict[str, float] = {}
    failed = []
    for name in names:
        print(f"\n== {name}", flush=True)
        got, seconds, ok = run_one(name)
        show(got)
        print(f"({seconds:.0f} s)", flush=True)
        rows += got
        timings[name.removeprefix("bench_")] = seconds
        if not ok:
            failed.append(name)
    RESULTS.write_text(markdown(rows, info, timings))
    print(f"\nwrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    missed = [f"{r['benchmark']}: {r['metric']}" for r in rows if r.get("ok") is False]
    if missed:
        print("missed or failed:\n  " + "\n  ".join(missed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
