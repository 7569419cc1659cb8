"""Finds the files (once, or every ``monitor-interval``) and hands out one split per file."""
from __future__ import annotations

import glob
import logging
import os
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from formats.file.base import FileFormat
from formats.message.base import MessageFormat
from runtime.errors import HubError
from runtime.fs import filesystem
from runtime.schema import TableSchema
from runtime.source import EnumeratorContext, SplitEnumerator
from sources.files.config import FilesSourceConfig
from sources.files.split import FileSplit
from sources.files.types import declared_schema, inferred_schema

log = logging.getLogger(__name__)

#: Files skipped in directories and globs: hidden or underscore names (in-progress and
#: pending part files, _SUCCESS markers, as Hadoop and Spark do) and temporary suffixes.
_SKIPPED_SUFFIXES = (".inprogress", ".pending", ".tmp")
_MAGIC = re.compile(r"[*?[]")


def _skipped(name: str) -> bool:
    return name.startswith((".", "_")) or name.endswith(_SKIPPED_SUFFIXES)


def base_dir(pattern: str) -> str:
    """The directory part of a glob before its first wildcard (the pattern if it has none)."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if _MAGIC.search(part):
            return os.sep.join(parts[:i]) or (os.sep if pattern.startswith(os.sep) else ".")
    return pattern


def default_table(pattern: str) -> str:
    """``files.<name>``: the file's stem, or the name of the (base) directory."""
    base = base_dir(pattern).rstrip(os.sep)
    name = os.path.basename(os.path.abspath(base) if base in ("", ".", "..") else base)
    if not _MAGIC.search(pattern) and not os.path.isdir(pattern):
        name = os.path.splitext(name)[0]
    return "files." + (re.sub(r"[^A-Za-z0-9_]", "_", name) or "files")


def check_path(pattern: str) -> None:
    """Raise a one-line HubError when the path (or a glob's base directory) is missing."""
    fs = filesystem(pattern)
    try:
        if _MAGIC.search(pattern):
            base = base_dir(pattern)
            if not fs.isdir(base):
                raise HubError(f"files source: directory {base!r} of path {pattern!r} does not "
                               f"exist")
        elif not fs.exists(pattern):
            raise HubError(f"files source: path {pattern!r} does not exist")
    except OSError as exc:
        raise HubError(f"files source: can't look at {pattern}: {exc}") from None


def list_files(pattern: str) -> list[str]:
    """Absolute paths (or URLs) of the files the pattern names, sorted."""
    fs = filesystem(pattern)
    if not fs.is_local:
        return _list_remote(pattern)
    if _MAGIC.search(pattern):
        base = base_dir(pattern)
        found = [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)
                 and not any(_skipped(c) for c in os.path.relpath(p, base).split(os.sep))]
    elif os.path.isdir(pattern):
        found = []
        for root, dirs, files in os.walk(pattern):
            dirs[:] = [d for d in dirs if not _skipped(d)]
            found += [os.path.join(root, f) for f in files if not _skipped(f)]
    else:
        found = [pattern] if os.path.isfile(pattern) else []
    return sorted(os.path.abspath(p) for p in found)


def _list_remote(pattern: str) -> list[str]:
    fs = filesystem(pattern)
    if _MAGIC.search(pattern):
        base = base_dir(pattern).rstrip("/")
        return [e.path for e in fs.glob(pattern) if not e.is_dir
                and not any(_skipped(c) for c in e.path[len(base):].strip("/").split("/"))]
    st = fs.status(pattern)
    if st is None:
        return []
    if not st.is_dir:
        return [pattern]
    found = []
    for _folder, dirs, files in fs.walk(pattern):
        dirs[:] = [d for d in dirs if not _skipped(d.name)]
        found += [f.path for f in files if not _skipped(f.name)]
    return sorted(found)


@dataclass(frozen=True)
class _Found:
    """What one discovery found (on the enumerator's I/O thread): new files with their size
    and modification time, new empty files, and the schema inferred from the first new file
    when the enumerator has none yet."""

    files: list[tuple[str, int, int]]
    empty: list[str]
    schema: TableSchema | None


def _scan(config: FilesSourceConfig, fmt: FileFormat | MessageFormat, table: str,
          known: frozenset[str], check: bool, infer: bool) -> _Found:
    """List the files of ``config.path`` not in ``known``: all the blocking I/O of a
    discovery, run off the control thread (``check``: the path must exist; ``infer``: infer
    the schema from the first new non-empty file)."""
    if check:
        check_path(config.path)
    fs = filesystem(config.path)
    files, empty, schema = [], [], None
    for path in list_files(config.path):
        if path in known:
            continue
        st = fs.status(path)
        if st is None:
            continue  # gone between listing and stat: it is not there to read
        if st.size == 0:
            empty.append(path)
            continue
        if infer and schema is None:
            assert isinstance(fmt, FileFormat)
            schema = inferred_schema(config, fmt, table, path)
        files.append((path, st.size, st.mtime_ms))
    return _Found(files, empty, schema)


class FilesEnumerator(SplitEnumerator):
    """Hands out the files, in path order, one per split request.

    State (``snapshot_state``): the table schema, the splits not handed out yet (without
    their schema), the paths already discovered, so a restored enumerator neither loses
    nor repeats a file, and whether the first listing was done.  The set of paths grows with
    the files seen (as in Flink's continuous file enumerator): a directory watched for years
    should be cleaned up by its producer.
    Bounded: the files present at the first start, then ``signal_no_more_splits``.
    Continuous: a discovery every ``monitor-interval``; requests that find nothing wait
    for the next new file.  Message formats carry their schemas in the messages: their splits
    have no schema and no file is opened here.

    Listing (and inferring the schema from a file) is blocking I/O: it runs through
    ``context.call_async`` and its result is taken in the control thread; requests that come
    meanwhile wait for it, and a bounded source signals no more splits only once the first
    listing is in.  Errors of the first listing end the job (a missing path); later ones are
    logged and the listing is tried again at the next interval, except
    :class:`~runtime.errors.HubError`s (a file whose schema can't be read).
    """

    def __init__(self, context: EnumeratorContext, config: FilesSourceConfig,
                 fmt: FileFormat | MessageFormat, table: str, state: dict[str, Any] | None):
        self.context = context
        self.config = config
        self.format = fmt
        self.table = table
        self.bounded = config.monitor_interval is None
        self.restored = state is not None
        state = state or {}
        self.messages = isinstance(fmt, MessageFormat)
        self.schema: TableSchema | None = None if self.messages else declared_schema(config, table)
        if state.get("schema"):
            self.schema = TableSchema.from_dict(state["schema"])
        self.pending: deque[FileSplit] = deque(FileSplit.from_dict(d)
                                               for d in state.get("pending", ()))
        self.discovered: set[str] = set(state.get("discovered", ()))
        #: the first listing's result is in (checkpoints of older versions: it was)
        self.listed: bool = bool(state.get("listed", self.restored))
        self.waiting: list[int] = []  # subtasks whose request found no split yet
        self.scanning = False  # a listing is running on the I/O thread

    # -- SplitEnumerator ----------------------------------------------------------------------
    def start(self) -> None:
        if not self.listed or not self.bounded:
            self._discover(first=not self.listed)
        if not self.bounded:
            assert self.config.monitor_interval is not None
            self.context.schedule(self._discover, self.config.monitor_interval)

    def handle_split_request(self, subtask: int) -> None:
        if self.pending:
            self._assign(subtask, self.pending.popleft())
        elif self.bounded and self.listed:
            self.context.signal_no_more_splits(subtask)
        elif subtask not in self.waiting:
            self.waiting.append(subtask)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        return {
            "schema": self.schema.to_dict() if self.schema else None,
            "pending": [dict(s.to_dict(), schema=None) for s in self.pending],
            "discovered": sorted(self.discovered),
            "listed": self.listed,
        }

    # -- discovery ----------------------------------------------------------------------------
    def _discover(self, first: bool = False) -> None:
        """Start a listing unless one is running (a slow one is not doubled by the timer)."""
        if self.scanning:
            return
        self.scanning = True
        known = frozenset(self.discovered)
        infer = self.schema is None and not self.messages
        config, fmt, table = self.config, self.format, self.table
        check = first and not self.restored
        self.context.call_async(lambda: _scan(config, fmt, table, known, check, infer),
                                lambda found, error: self._found(found, error, first))

    def _found(self, found: _Found | None, error: BaseException | None, first: bool) -> None:
        """The listing's result, in the control thread."""
        self.scanning = False
        if error is not None:
            if first or isinstance(error, HubError) or not isinstance(error, OSError):
                raise error
            # a listing failing once (NFS hiccup) is retried next interval
            log.warning("files source: listing %s failed, retrying in %ss: %s",
                        self.config.path, self.config.monitor_interval, error)
            return
        assert found is not None
        for path in found.empty:
            if path not in self.discovered:
                self.discovered.add(path)
                log.info("files source: skipping empty file %s", path)
        added = 0
        for path, size, mtime_ms in found.files:
            if path in self.discovered:
                continue
            self.discovered.add(path)
            self.pending.append(FileSplit(path, path=path, size=size, mtime_ms=mtime_ms))
            added += 1
        if self.schema is None and found.schema is not None:
            self.schema = found.schema
        if first:
            self.listed = True
            if self.bounded and not added and not self.pending:
                log.warning("files source: no file to read under %s", self.config.path)
        while self.waiting and self.pending:
            self._assign(self.waiting.pop(0), self.pending.popleft())
        if self.bounded and self.listed:
            waiting, self.waiting = self.waiting, []
            for subtask in waiting:
                self.context.signal_no_more_splits(subtask)

    def _assign(self, subtask: int, split: FileSplit) -> None:
        if not self.messages:
            assert self.schema is not None  # a split exists only once a file gave the schema
            split.schema = self.schema.to_dict()
        self.context.assign_splits({subtask: [split]})
