"""Control elements that flow in band with the data batches.

Between operators flow: :class:`~runtime.batch.ChangeBatch`, :class:`~runtime.schema.SchemaChange`,
:class:`Watermark`, :class:`Barrier` and :data:`END_OF_INPUT`.  All are plain data.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Watermark value that says "no more events at all" (end of a bounded input).
MAX_WATERMARK = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Watermark:
    """No event with event time <= ``ts_ms`` follows on this input.  ``idle``: this input
    has nothing to say for now (``ts_ms`` is meaningless) and must not hold others back."""

    ts_ms: int
    idle: bool = False


@dataclass(frozen=True, slots=True)
class Barrier:
    """Checkpoint barrier: everything before it belongs to checkpoint ``checkpoint_id``."""

    checkpoint_id: int
    savepoint: str | None = None
    final: bool = False


class _EndOfInput:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END_OF_INPUT"

    def __reduce__(self) -> str:
        # unpickled as the one instance (consumers compare with ``is``), wherever it went
        return "END_OF_INPUT"


#: This input will deliver nothing more.
END_OF_INPUT = _EndOfInput()
