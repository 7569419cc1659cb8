"""The files sink committer: pending part files become visible, complete partitions get
``_SUCCESS``."""
from __future__ import annotations

import logging
import os

from runtime.errors import HubError, TerminalError
from runtime.faults import crash_point
from runtime.fs import filesystem, is_below, os_error
from runtime.sink import CommitContext, Committable, CommitOutcome, Committer, settle
from sinks.files.bucket import hidden_part_pattern
from sinks.files.registrar import HiveRegistrar

log = logging.getLogger(__name__)

SUCCESS_FILE = "_SUCCESS"


class FilesCommitter(Committer):
    """Commits the committables of :class:`~sinks.files.writer.FilesSinkWriter`.

    * ``{"kind": "file", "pending", "final"}``: rename pending to final.  Idempotent: final
      present and pending gone means already committed; neither present is logged as an error
      (the data is lost, e.g. deleted by hand) and skipped, never raised.
    * ``{"kind": "table", "table", "dir", "columns"}`` (``metastore`` policy): the table is
      registered in the metastore (created once, new columns added), see
      :class:`~sinks.files.registrar.HiveRegistrar`;
    * ``{"kind": "partition", "dir", "end_ms", "table", "part"}``: once the checkpoint's
      watermark has reached ``end_ms`` the partition is committed by each policy in order
      (``success-file``: write ``dir/_SUCCESS``; ``metastore``: add partition ``part`` of
      ``table``, nothing when it exists); until then the committable is returned ("not yet"),
      deduplicated by directory, to be offered again with a later checkpoint.

    Files are committed before tables and partitions in the same call, so neither
    ``_SUCCESS`` nor a metastore partition ever precedes the files of its checkpoint: a file
    that fails (:meth:`commit_each`: retried alone when the error is transient) holds the
    tables and partitions of the call back with it.
    Crash point (tests): ``files-success-written``, a ``_SUCCESS`` is written and the policies
    after ``success-file`` have not run yet.
    """

    def __init__(self, root: str, policies: tuple[str, ...] = ("success-file",),
                 registrar: HiveRegistrar | None = None):
        self._root = root
        self._fs = filesystem(root)
        self._policies = policies
        self._registrar = registrar

    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        return settle(self.commit_each(committables, context))

    def commit_each(self, committables: list[Committable], context: CommitContext
                    ) -> list[CommitOutcome]:
        outcomes: list[CommitOutcome] = []
        others: list[Committable] = []
        renamed: dict[str, list[tuple[Committable, bool]]] = {}  # by directory
        for c in committables:
            if c.get("kind") != "file":
                others.append(c)
                continue
            try:
                self._check_below_root(c["pending"], c["final"])
                now = self._commit_file(c["pending"], c["final"])
            except HubError as exc:  # this file only
                outcomes.append(CommitOutcome.failure(c, exc))
                continue
            renamed.setdefault(os.path.dirname(c["final"]), []).append((c, now))
        for directory, files in renamed.items():
            try:
                # the renames survive a power loss before we report success
                self._fs.sync_dir(directory)
            except OSError as exc:
                error = _os_error(f"syncing {directory}", exc)
                outcomes.extend(CommitOutcome.failure(c, error) for c, _ in files)
                continue
            outcomes.extend(CommitOutcome.done(c) if now else CommitOutcome.already_committed(c)
                            for c, now in files)
        error = next((o.error for o in outcomes if o.error is not None), None)
        if error is not None:  # tables and partitions wait for the files of their checkpoint
            return outcomes + [CommitOutcome.failure(c, error) for c in others]
        try:
            return outcomes + self._commit_others(others, context)
        except HubError as exc:
            return outcomes + [CommitOutcome.failure(c, exc) for c in others]

    def _commit_others(self, committables: list[Committable], context: CommitContext
                       ) -> list[CommitOutcome]:
        """Tables, then the partitions the watermark has passed; the others "not yet"."""
        partitions: dict[str, Committable] = {}
        tables: dict[str, Committable] = {}
        for c in committables:
            kind = c.get("kind")
            if kind == "partition":
                self._check_below_root(c["dir"])
                known = partitions.get(c["dir"])
                if known is None or int(c["end_ms"]) > int(known["end_ms"]):
                    partitions[c["dir"]] = c
            elif kind == "table":
                self._check_below_root(c["dir"])
                tables[c["table"]] = c  # the last one of a table has its newest columns
            else:
                log.error("files sink: dropping a committable of unknown kind: %r", c)
        if self._registrar is not None:
            for c in tables.values():
                self._registrar.register_table(c)
        not_yet: list[Committable] = []
        done: list[Committable] = []
        watermark = context.watermark_ms
        for c in partitions.values():
            if watermark is not None and watermark >= int(c["end_ms"]):
                done.append(c)
            else:
                not_yet.append(c)
        if done:
            self._commit_partitions(done, context.checkpoint_id)
        later = {id(c) for c in not_yet}
        # a partition named again with a later end is offered (or committed) as that one
        return ([CommitOutcome.done(c) for c in committables if id(c) not in later]
                + [CommitOutcome.not_yet(c) for c in not_yet])

    def close(self) -> None:
        if self._registrar is not None:
            self._registrar.close()

    def recover(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        """Commit the restored committables, then delete this pipeline's hidden part files
        that are not among them: in-progress or pending files of a run that failed after the
        restored checkpoint.  Visible files and other pipelines' files are never touched."""
        not_yet = self.commit(committables, context) if committables else []
        keep = {c["pending"] for c in committables if c.get("kind") == "file"}
        self._remove_strays(context.pipeline, keep)
        return not_yet

    # -- internals ------------------------------------------------------------------------------
    def _check_below_root(self, *paths: str) -> None:
        # Writers only name paths below the root; a checkpoint that says otherwise was not
        # written by this sink's writers (or for another path): never rename or create there.
        for path in paths:
            if not is_below(path, self._root):
                raise TerminalError(f"files sink: a committable names {path}, outside "
                                    f"{self._root}; refused (was path changed while a "
                                    f"checkpoint was pending?)")

    def _commit_file(self, pending: str, final: str) -> bool:
        """Rename; False when it was committed before (or is lost: logged)."""
        try:
            if self._fs.rename(pending, final):
                return True
            if self._fs.exists(final):
                return False  # committed before (this is a replay)
        except OSError as exc:
            raise _os_error(f"committing {pending} as {final}", exc) from exc
        log.error("files sink: neither pending file %s nor committed file %s exists; its rows "
                  "are lost (deleted outside the hub?)", pending, final)
        return False

    def _commit_partitions(self, done: list[Committable], checkpoint_id: int) -> None:
        """Commit complete partitions by each policy in turn (the metastore gets one call per
        table for all of them)."""
        for policy in self._policies:
            if policy == "success-file":
                for c in done:
                    self._write_success(c["dir"])
                    crash_point("files-success-written", checkpoint_id)
            elif policy == "metastore" and self._registrar is not None:
                by_table: dict[str, list[tuple[str, str]]] = {}
                for c in done:
                    if "table" not in c:  # prepared by a version that did not name the table
                        log.warning("files sink: partition %s is not added to the metastore: "
                                    "its checkpoint does not name its table", c["dir"])
                        continue
                    by_table.setdefault(c["table"], []).append((c["dir"], c["part"]))
                for table_id, parts in by_table.items():
                    self._registrar.add_partitions(table_id, parts)

    def _write_success(self, directory: str) -> None:
        try:
            self._fs.makedirs(directory)
            self._fs.write_bytes(os.path.join(directory, SUCCESS_FILE), b"")
        except OSError as exc:
            raise _os_error(f"writing {SUCCESS_FILE} into {directory}", exc) from exc

    def _remove_strays(self, pipeline: str, keep: set[str]) -> None:
        own = hidden_part_pattern(pipeline)
        try:
            for _directory, _dirs, files in self._fs.walk(self._root):
                for f in files:
                    if not own.match(f.name) or f.path in keep:
                        continue
                    if self._fs.remove(f.path):
                        log.info("files sink: removed %s, written after the restored checkpoint",
                                 f.path)
        except OSError as exc:
            raise _os_error(f"removing stray part files under {self._root}", exc) from exc


def _os_error(what: str, exc: OSError) -> HubError:
    return os_error(f"files sink: {what}", exc)
