"""The files sink factory (``type = "files"``)."""
from __future__ import annotations

import os
import uuid
from typing import Any, ClassVar

from runtime.fs import filesystem, os_error
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.files.bucket import visible_part_pattern
from sinks.files.committer import FilesCommitter
from sinks.files.config import FilesSinkConfig
from sinks.files.registrar import HiveRegistrar
from sinks.files.writer import FilesSinkWriter


class FilesSink(Sink):
    """Exactly-once part files on a local filesystem or HDFS (see :mod:`sinks.files`).

    Writers (:class:`FilesSinkWriter`) produce hidden part files; the committer
    (:class:`FilesCommitter`) renames them visible and marks complete partitions.  Keeps no
    connection and no state beyond committables.
    """

    config_class: ClassVar[type[FilesSinkConfig]] = FilesSinkConfig

    def __init__(self, config: FilesSinkConfig):
        self.config = config

    def check(self) -> None:
        """Create ``path`` if needed and prove a file can be created in it; with the
        ``metastore`` commit policy, that the metastore answers."""
        root = self.config.root
        try:
            fs = filesystem(root)
            fs.makedirs(root)
            probe = os.path.join(root, f".hub-check-{uuid.uuid4().hex}")
            fs.create(probe).close()  # raises what the upload met (permissions, no datanode)
            fs.remove(probe)
        except OSError as exc:  # transient when the store is down: [restart] waits for it
            raise os_error(f"files sink: path {root!r} is not writable", exc) from None
        if "metastore" in self.config.commit_policies:
            registrar = HiveRegistrar(self.config)
            try:
                registrar.check()
            finally:
                registrar.close()

    def existing_output(self, pipeline: str) -> list[str]:
        """The folders holding committed part files of ``pipeline``, with their count."""
        root = self.config.root
        own = visible_part_pattern(pipeline)
        found: list[str] = []
        try:
            for directory, _dirs, files in filesystem(root).walk(root):
                n = sum(1 for f in files if own.match(f.name))
                if n:
                    found.append(f"{directory}: {n} part file{'s' if n > 1 else ''}")
        except OSError as exc:
            raise os_error(f"files sink: looking for earlier output under {root}", exc) from exc
        return found

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        # ``state`` is always None: in-progress files are not resumable, committables suffice.
        return FilesSinkWriter(self.config, context)

    def create_committer(self) -> Committer:
        policies = self.config.commit_policies
        registrar = HiveRegistrar(self.config) if "metastore" in policies else None
        return FilesCommitter(self.config.root, policies, registrar)
