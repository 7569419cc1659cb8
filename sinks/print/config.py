"""Options of the print sink."""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from runtime.config import ConnectorConfig


class PrintSinkConfig(ConnectorConfig):
    """Typed options of ``type = "print"``."""

    summary: ClassVar[str] = "Prints every change event as one line (+I[...], -U/+U, -D)"

    print_identifier: str = Field(
        "", description="Prefix of every line (with the subtask number when parallelism > 1).")
    standard_error: bool = Field(
        False, description="Print to standard error instead of standard output.")
    limit: int | None = Field(
        None, ge=0, description="Print at most this many lines per subtask; unset: no limit.")
