"""The Delta Lake sink factory (``type = "delta"``)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import ClassVar

from runtime.errors import HubError
from runtime.fs import is_url
from sinks.delta.committer import DeltaCommitter
from sinks.delta.config import DeltaSinkConfig
from sinks.delta.partition import check_fields
from sinks.delta.writer import DeltaLayout
from sinks.lake.sink import LakeSink


class DeltaSink(LakeSink):
    """Exactly-once Delta tables (see :mod:`sinks.delta`): writers stage write-ahead-log
    segments and data files (:class:`DeltaLayout`), :class:`DeltaCommitter` commits them.  Keeps no connection and no state beyond
    committables."""

    config_class: ClassVar[type[DeltaSinkConfig]] = DeltaSinkConfig
    committer_class: ClassVar[type[DeltaCommitter]] = DeltaCommitter

    def __init__(self, config: DeltaSinkConfig):
        super().__init__(config)
        check_fields(config.partition_fields)  # bucket(...) is refused before anything runs

    def layout(self) -> DeltaLayout:
        return DeltaLayout(self.config)

    def read_hint(self, tables: list[str]) -> str | None:
        """Polars reading the first table's current state."""
        if not tables:
            return None
        try:
            uri = self.config.table_uri(tables[0])
        except ValueError:
            return None
        if not is_url(uri):
            relative = os.path.relpath(uri)
            uri = relative if not relative.startswith("..") else uri
        return f"import polars as pl; print(pl.read_delta({json.dumps(uri)}))"

    def check(self) -> None:
        """A local ``path`` must be a folder files can be created in."""
        root = self.config.root
        if is_url(root):
            return
        try:
            os.makedirs(root, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root, prefix=".hub-check-"):
                pass
        except OSError as exc:
            raise HubError(f"delta sink: path {root!r} is not writable: "
                           f"{exc.strerror or exc}") from None
