"""A committer for sinks that have nothing to commit (print, blackhole)."""
from __future__ import annotations

from runtime.sink import CommitContext, Committable, Committer


class NoOpCommitter(Committer):
    """Commits nothing and never defers anything: :meth:`commit` returns ``[]``."""

    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        return []
