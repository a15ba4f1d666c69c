"""Figures the benchmarks report: nearest-rank percentiles, and rounding that keeps "no sample"
as None (printed null), never as a 0 that would read like a result."""

from __future__ import annotations


def pct(values, q: float) -> float | None:
    """The ``q``-th percentile of ``values`` (nearest rank); None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
