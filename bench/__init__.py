"""Benchmarks: scripts that print figures (not tests). `python -m bench.run` runs them all.

Each `bench/bench_*.py` exposes `main() -> list[dict]`, one dict per figure:
{benchmark, metric, value, unit, baseline, ratio, target, ok}. The helpers below are shared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

BENCH_API_KEY = "bench-api-key-0123456789"


def settings(state_dir: Path, url: str = "", **overrides: Any):
    """Settings for a throwaway node: defaults for everything the benchmark doesn't say."""
    from syncd.settings import Settings

    base: dict[str, Any] = {"state_dir": state_dir, "database": {"url": url},
                                "api": {"keys": [BENCH_API_KEY]},
                                "log": {"level": "WARNING", "json": False}}
    base.update(overrides)
    return Settings(**base)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def row(benchmark: str, metric: str, value: float, unit: str, *, baseline: float | None = None,
        ratio: float | None = None, target: str | None = None, ok: bool | None = None) -> dict:
    if ratio is None and baseline:
        ratio = value / baseline
    return {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit, "baseline": baseline,
                "ratio": ratio, "target": target, "ok": ok}


def show(rows: list[dict]) -> None:
    """Print rows as aligned text (each script's own `__main__` uses this)."""
    for r in rows:
        extra = []
        if r.get("baseline") is not None:
            extra.append(f"baseline {fmt(r['baseline'])}")
        if r.get("ratio") is not None:
            extra.append(f"ratio {fmt(r['ratio'])}")
        if r.get("target"):
            extra.append(f"target {r['target']} {'OK' if r.get('ok') else 'MISSED'}")
        print(f"{r['benchmark']:>10} {r['metric']:<44} {fmt(r['value']):>10} {r['unit']:<8}"
              f" {'; '.join(extra)}")


def fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0 or abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    return str(v)
