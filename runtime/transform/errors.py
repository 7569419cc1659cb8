"""The transform package's errors."""
from __future__ import annotations


class ExprError(ValueError):
    """An expression that cannot be compiled or evaluated; the message names what is wrong
    (callers add the key path).  ``part``: the option it comes from (``projection``,
    ``filter``, ``primary-keys``) when known."""

    part: str | None = None

    def at(self, part: str) -> ExprError:
        if self.part is None:
            self.part = part
        return self
