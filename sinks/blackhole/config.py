"""Options of the blackhole sink (it has none)."""
from __future__ import annotations

from typing import ClassVar

from runtime.config import ConnectorConfig


class BlackholeSinkConfig(ConnectorConfig):
    """``type = "blackhole"`` takes no options."""

    summary: ClassVar[str] = "Discards every batch and counts rows (for benchmarks)"
