"""Test connectors of the Ray executor's tests, in a module the actors can import (a test
module is imported under another name by pytest)."""
from __future__ import annotations

import os

from tests.contract.connectors import RangeSource


class WhereRangeSource(RangeSource):
    """A :class:`RangeSource` whose enumerator writes the id of the process it is made in."""

    def __init__(self, *args, pid_file: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.pid_file = pid_file

    def create_enumerator(self, context, state):
        with open(self.pid_file, "w") as f:
            f.write(str(os.getpid()))
        return super().create_enumerator(context, state)
