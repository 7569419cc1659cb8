"""Generates the events of the splits assigned to one subtask, a batch per poll."""
from __future__ import annotations

import time

import numpy as np

from runtime.batch import ChangeBatch
from runtime.source import InputStatus, ReaderContext, ReaderOutput, SourceReader
from sources.datagen.config import DatagenConfig
from sources.datagen.generator import RowGenerator, mix64
from sources.datagen.split import DatagenSplit

_KIND_SALT = np.uint64(0xD1B54A32D192ED03)
_PICK_SALT = np.uint64(0x8CB92BA72F3D8DD7)
_INSERT, _UPDATE, _DELETE = ord("c"), ord("u"), ord("d")


class DatagenReader(SourceReader):
    def __init__(self, context: ReaderContext, config: DatagenConfig,
                 generators: dict[str, RowGenerator], total_splits: int):
        self.context = context
        self.config = config
        self.generators = generators
        self.total_splits = total_splits
        self.splits: list[DatagenSplit] = []
        self.next = 0
        self.no_more = False
        self.requested = False
        self.insert_op = ord(config.op)
        self._rate_start: float | None = None
        self._rate_emitted = 0

    def start(self) -> None:
        self._request()

    def _request(self) -> None:
        if not self.requested:
            self.requested = True
            self.context.send_split_request()

    def add_splits(self, splits: list) -> None:
        self.splits.extend(splits)
        self.requested = False

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    def snapshot_state(self, checkpoint_id: int) -> list[DatagenSplit]:
        return [DatagenSplit(**s.to_dict()) for s in self.splits]

    # -- generation ---------------------------------------------------------------------------
    def _allowed(self) -> int:
        """Events the rate limit allows now (rows-per-second is shared by all splits)."""
        rps = self.config.rows_per_second
        if not rps:
            return self.config.batch_size
        now = time.monotonic()
        if self._rate_start is None:
            self._rate_start = now
        rate = rps * len(self.splits) / max(1, self.total_splits)
        return int((now - self._rate_start) * rate) - self._rate_emitted

    def wait_available(self, timeout_s: float) -> None:
        rps = self.config.rows_per_second
        if rps and self.splits:
            rate = rps * len(self.splits) / max(1, self.total_splits)
            time.sleep(min(timeout_s, 1.0 / rate))
        else:
            time.sleep(min(timeout_s, 0.01))

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if not self.splits:
            if self.no_more:
                return InputStatus.END_OF_INPUT
            self._request()
            return InputStatus.NOTHING_AVAILABLE
        allowed = self._allowed()
        if allowed <= 0:
            return InputStatus.NOTHING_AVAILABLE
        self.next %= len(self.splits)
        split = self.splits[self.next]
        self.next += 1
        n = min(self.config.batch_size, allowed)
        if split.remaining is not None:
            n = min(n, split.remaining)
        if n > 0:
            output.collect(self._batch(split, n), split.split_id)
            self._rate_emitted += n
        if split.remaining == 0:
            output.split_finished(split.split_id)
            self.splits.remove(split)
            if not self.splits and not self.no_more:
                self._request()
        return InputStatus.MORE_AVAILABLE

    def _batch(self, split: DatagenSplit, n: int) -> ChangeBatch:
        """The next ``n`` events of ``split``; advances its progress."""
        gen = self.generators[split.table]
        events = np.arange(split.emitted, split.emitted + n, dtype=np.int64)
        serial = split.index + split.count * events  # event number within the table
        ts_ms = split.start_ms + (serial * split.step_ms).astype(np.int64)
        cfg = self.config
        if not cfg.update_ratio and not cfg.delete_ratio:
            kinds = np.full(n, self.insert_op, dtype=np.uint8)
            numbers = np.arange(split.inserted, split.inserted + n, dtype=np.int64)
            versions = np.zeros(n, dtype=np.int64)
            split.inserted += n
        else:
            kinds, numbers, versions = self._changes(split, serial)
        ids = split.index + split.count * numbers + 1
        deleted = kinds == _DELETE
        rb = gen.generate(ids, versions, ts_ms, deleted)
        split.emitted += n
        # the event number within the table grows along each key's changes: a valid version
        return ChangeBatch(gen.schema, kinds.tobytes().decode("ascii"), arrow=rb, ts_ms=ts_ms,
                           versions=serial)

    def _changes(self, split: DatagenSplit, serial: np.ndarray):
        """Kinds, insert numbers and versions of a batch with updates and deletes.  Deletes
        take the oldest live row, updates a random live one; a change with no live row to
        act on becomes an insert."""
        cfg = self.config
        salt = np.uint64((cfg.seed * int(_KIND_SALT)) % 2**64)
        h = mix64(serial.astype(np.uint64) ^ salt)
        u = (h >> np.uint64(11)).astype(np.float64) / float(2**53)
        kinds = np.where(u < cfg.delete_ratio, _DELETE,
                         np.where(u < cfg.delete_ratio + cfg.update_ratio, _UPDATE, self.insert_op))
        kinds = kinds.astype(np.uint8)
        pick = mix64(serial.astype(np.uint64) ^ _PICK_SALT)
        is_ins = kinds == self.insert_op
        is_del = kinds == _DELETE
        ins_before = split.inserted + np.cumsum(is_ins) - is_ins
        del_before = split.deleted + np.cumsum(is_del) - is_del
        live = ins_before - del_before
        if np.any(~is_ins & (live <= 0)):
            return self._changes_slow(split, kinds, pick, serial)
        numbers = np.where(is_ins, ins_before,
                           np.where(is_del, del_before,
                                    del_before + (pick % np.maximum(live, 1).astype(np.uint64)).astype(np.int64)))
        versions = np.where(kinds == _UPDATE, serial + 1, 0)
        split.inserted += int(is_ins.sum())
        split.deleted += int(is_del.sum())
        return kinds, numbers.astype(np.int64), versions

    def _changes_slow(self, split: DatagenSplit, kinds, pick, serial):
        # Rare: only while a split has (almost) no live rows, at its very start.
        numbers = np.empty(len(kinds), dtype=np.int64)
        for i in range(len(kinds)):
            live = split.inserted - split.deleted
            if kinds[i] != self.insert_op and live <= 0:
                kinds[i] = self.insert_op
            if kinds[i] == self.insert_op:
                numbers[i] = split.inserted
                split.inserted += 1
            elif kinds[i] == _DELETE:
                numbers[i] = split.deleted
                split.deleted += 1
            else:
                numbers[i] = split.deleted + int(pick[i] % np.uint64(live))
        versions = np.where(kinds == _UPDATE, serial + 1, 0)
        return kinds, numbers, versions
