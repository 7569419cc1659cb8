"""``import ray``, or one line naming the extra that brings it."""
from __future__ import annotations

from runtime.errors import ConfigError

try:
    import ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ConfigError(f"the Ray executor needs the ray extra: pip install 'cdc-hub[ray]' ({exc})",
                      key="pipeline.executor") from None
