"""A pipeline's configuration as the API shows it: secrets masked.

Connector options typed ``SecretStr`` are masked by pydantic's own JSON dump; on top of that,
every value under a key that names a secret (``password``, ``sasl.password``, ``api-key``,
``token`` ...) and the password of any ``scheme://user:password@host`` URL is masked, so a
connector that keeps a secret in a plain string or a free-form properties table leaks nothing.
"""
from __future__ import annotations

import re
from typing import Any

from hub.config import PipelineSpec

MASK = "**********"
_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|credential|api[-_.]?key|access[-_.]?key"
                         r"|private[-_.]?key|jaas|auth", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*:)[^@/\s]*(?=@)")


def mask(value: Any, key: str = "") -> Any:
    """``value`` with every secret in it replaced by :data:`MASK` (a new object)."""
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v, key) for v in value]
    if key and _SECRET_KEY.search(key) and value not in (None, "", False, True):
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, value)
    return value


def masked_config(spec: PipelineSpec) -> dict[str, Any]:
    """The validated configuration of ``spec`` (defaults filled in), secrets masked."""
    ck, er, rs = spec.checkpoint, spec.errors, spec.restart
    return mask({
        "pipeline": {"name": spec.name, "parallelism": spec.parallelism,
                     "channel-capacity": spec.channel_capacity,
                     "channel-bytes": spec.channel_bytes},
        "checkpoint": {"interval-s": ck.interval_s, "dir": ck.dir, "retain": ck.retain,
                       "timeout-s": ck.timeout_s, "tolerable-failures": ck.tolerable_failures},
        "errors": {"tolerance": er.tolerance, "dead-letter-path": er.dead_letter_path},
        "restart": {"attempts": rs.attempts, "delay-s": rs.delay_s,
                    "max-delay-s": rs.max_delay_s},
        "source": {"type": spec.source_type,
                   **spec.source_config.model_dump(mode="json", by_alias=True)},
        "sink": {"type": spec.sink_type,
                 **spec.sink_config.model_dump(mode="json", by_alias=True)},
    })
