"""Parsing of the human units used in pipeline files: durations and byte sizes."""
from __future__ import annotations

import re

_DURATION_UNITS = {
    "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}
_SIZE_UNITS = {
    "": 1, "b": 1, "kb": 1024, "k": 1024, "kib": 1024, "mb": 1024**2, "m": 1024**2, "mib": 1024**2,
    "gb": 1024**3, "g": 1024**3, "gib": 1024**3,
}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(value: str | int | float) -> float:
    """``"500ms"``, ``"10s"``, ``"5min"``, ``"2h"`` -> seconds.  A bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '10s', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _NUMBER_UNIT.match(value)
    if not m or m.group(2).lower() not in _DURATION_UNITS and m.group(2) != "":
        raise ValueError(f"expected a duration like '500ms', '10s' or '5min', got {value!r}")
    unit = m.group(2).lower() or "s"
    return float(m.group(1)) * _DURATION_UNITS[unit]


def parse_size(value: str | int) -> int:
    """``"128MB"``, ``"64k"``, ``1048576`` -> bytes (binary multiples)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '128MB', got {value!r}")
    if isinstance(value, int):
        return value
    m = _NUMBER_UNIT.match(value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"expected a size like '64KB', '128MB' or '1GB', got {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
