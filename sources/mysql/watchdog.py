"""The binlog stream's watchdog: a stream that stops moving while the server's binlog moves on
must not go unnoticed.

A lost connection is found by the stream itself (an error, the server's EOF at shutdown, or no
heartbeat for several periods, see :func:`~sources.mysql.binlog.silence_timeout`), and
reconnected there.  What is left is a stream that is connected and silent, or a reader stuck
elsewhere: every ``period`` the watchdog looks whether the fetcher read anything; when it did
not while reading, it asks the server where its binlog ends, and when that is past the last
position read, logs one line naming both.  It costs the stream nothing (it samples positions
the stream keeps anyway) and the server one query per silent period.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from runtime.errors import TerminalError
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import connect, where

log = logging.getLogger("hub.sources.mysql")
#: the shortest period between two looks (10 heartbeat periods otherwise)
MIN_PERIOD_S = 10.0


class StallWatchdog(threading.Thread):
    def __init__(self, fetcher: Any, period_s: float):
        super().__init__(name="mysql-binlog-watchdog", daemon=True)
        self.fetcher = fetcher
        self.period_s = period_s
        self.stopped = threading.Event()
        self.warnings = 0

    def run(self) -> None:
        f = self.fetcher
        seen = None
        while not self.stopped.wait(self.period_s):
            if not f.is_alive():
                if not f.stopped.is_set() and not f.reported:
                    log.error("binlog: the binlog thread ended without a word (a bug): no "
                              "change is read any more; the reader stops the pipeline")
                return
            now = (f.last_end, f.offset)
            if now != seen or f.state != "reading":
                seen = now
                continue
            try:
                self._check(f)
            except Exception as exc:  # noqa: BLE001 - a check only: the stream goes on
                log.warning("binlog: the stream read nothing for %gs and the server's binlog "
                            "position could not be read to compare (%s)", self.period_s, exc)

    def _check(self, f: Any) -> None:
        conn = connect({**f.settings, "read_timeout": 10})   # a look, never a hang
        try:
            end = f.dialect.binlog_status(conn)
        finally:
            conn.close()
        last = BinlogOffset(*f.last_end) if f.last_end else f.offset
        if end.is_before(last):
            # MariaDB's dump thread waits at its old position for good after a RESET MASTER
            f.abort(TerminalError(
                f"binlog: {where(f.settings)}'s binlog ends at {end}, before the position "
                f"{last} the stream read up to: the binlog was reset (RESET MASTER) or this is "
                "another server; changes in between may be lost and versions from positions "
                "would go backwards. Remedy: empty (TRUNCATE) or drop the target tables and run "
                "`hub run --fresh` for a new snapshot"))
            return
        if last.is_before(end):
            self.warnings += 1
            log.warning("binlog: nothing read from %s for %gs while its binlog moved on: the "
                        "stream is at %s, the server's binlog ends at %s (the stream is %s; a "
                        "silent connection is dropped and reconnected after %gs without "
                        "heartbeat)", where(f.settings), self.period_s, last, end, f.state,
                        f.silence_s)

    def stop(self) -> None:
        self.stopped.set()
