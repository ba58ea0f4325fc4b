"""Cheap machine figures for the heartbeat, read from /proc (zeros where there is none)."""

from __future__ import annotations

import resource
from typing import Any


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat", encoding="ascii") as file:
            fields = [int(v) for v in file.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


class CpuSampler:
    """Whole-machine CPU use since the previous sample, 0..100."""

    def __init__(self) -> None:
        self._last = _cpu_times()

    def __call__(self) -> float:
        now = _cpu_times()
        if now is None or self._last is None:
            return 0.0
        total, idle = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        return 0.0 if total <= 0 else round(min(100.0, max(0.0, 100.0 * (total - idle) / total)), 1)


def memory() -> dict[str, Any]:
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                name, _, rest = line.partition(":")
                info[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    total_kb = info.get("MemTotal", 0)
    available_kb = info.get("MemAvailable", total_kb)
    rss_mb = 0.0
    try:
        with open("/proc/self/status", encoding="ascii") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    rss_mb = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    used_pct = 0.0 if total_kb == 0 else 100.0 * (total_kb - available_kb) / total_kb
    return {"usedPct": round(used_pct, 1), "totalMb": round(total_kb / 1024), "rssMb": round(rss_mb)}
