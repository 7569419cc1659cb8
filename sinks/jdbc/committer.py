"""The JDBC sink committer: second phase of the writers' prepared transactions."""
from __future__ import annotations

import logging
from typing import Any

from runtime.errors import HubError
from runtime.sink import CommitContext, Committable, CommitOutcome, Committer, settle
from sinks.jdbc.dialect import Dialect

log = logging.getLogger(__name__)


class JdbcCommitter(Committer):
    """Commits ``{"xid": ...}`` committables with ``COMMIT PREPARED`` / ``XA COMMIT``.

    * Idempotent: a transaction id the server does not know was committed before (only
      committables of durable checkpoints reach here, and nothing else finishes them).
    * :meth:`recover` commits the restored checkpoint's transactions, then rolls back every
      other prepared transaction of this pipeline (ids ``hub:<pipeline>:...``): those were
      prepared after the restored checkpoint and their data will be written again.
    * :meth:`abort` rolls back the transactions of a checkpoint that will never complete, so
      that their locks don't wait for the next start; idempotent, best effort.
    * One outcome per transaction (:meth:`commit_each`): a transaction whose commit fails is
      retried alone (a transient error: a lost connection, a deadlock) or fails the job (the
      rest), the others are committed meanwhile.  Every client error is as
      :meth:`Dialect.translate` makes it.
    """

    #: The next checkpoint waits for this one's commit (see Committer.max_commits_in_flight):
    #: its writers' transactions would otherwise begin together the moment it is done, with
    #: the next barrier right behind, and wait on each other's duplicate-key locks.
    max_commits_in_flight = 1

    def __init__(self, dialect: Dialect):
        self._dialect = dialect
        self._conn: Any = None

    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        return settle(self.commit_each(committables, context))

    def commit_each(self, committables: list[Committable], context: CommitContext
                    ) -> list[CommitOutcome]:
        outcomes = []
        for c in committables:
            xid = c["xid"]
            try:
                if self._call(self._dialect.commit_prepared, xid, "committing"):
                    outcomes.append(CommitOutcome.done(c))
                else:
                    log.debug("jdbc sink: %s was committed before", xid)
                    outcomes.append(CommitOutcome.already_committed(c))
            except HubError as exc:  # this one only: the others are independent transactions
                outcomes.append(CommitOutcome.failure(c, exc))
        return outcomes

    def recover(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        self.commit(committables, context)
        keep = {c["xid"] for c in committables}
        prefix = self._dialect.xid_prefix(context.pipeline)
        strays = self._call(self._dialect.prepared_xids, prefix, "listing prepared transactions")
        for xid in strays:
            if xid not in keep:
                self._call(self._dialect.rollback_prepared, xid, "rolling back")
                log.info("jdbc sink: rolled back %s, prepared after the restored checkpoint", xid)
        return []

    def abort(self, committables: list[Committable], context: CommitContext) -> None:
        for c in committables:
            xid = c["xid"]
            try:
                if self._call(self._dialect.rollback_prepared, xid, "rolling back"):
                    log.info("jdbc sink: rolled back %s of checkpoint %s, which will not "
                             "complete", xid, context.checkpoint_id)
            except HubError as exc:
                # recover() rolls it back at the next start
                log.warning("jdbc sink: could not roll back %s of checkpoint %s (%s); the "
                            "next start rolls it back", xid, context.checkpoint_id, exc)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                log.debug("jdbc sink: closing the committer's connection failed", exc_info=True)
            self._conn = None

    def _call(self, fn: Any, arg: str, what: str) -> Any:
        try:
            if self._conn is None:
                # COMMIT PREPARED can't run inside a transaction block
                self._conn = self._dialect.connect(autocommit=True)
            return fn(self._conn, arg)
        except HubError as exc:
            if exc.transient:
                self.close()  # a lost connection: the retry connects anew
            raise
        except self._dialect.driver_errors as exc:
            error = self._dialect.translate(exc, f"{what} {arg}")
            if error.transient:
                self.close()
            raise error from exc
