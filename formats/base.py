"""What both families of formats build on (:mod:`formats.file`, :mod:`formats.message`).

* :data:`BadRecordHandler`: what readers and writers of either family call with a record
  they can't carry.
* The message codec interface: a :class:`MessageDecoder` turns many messages at once into
  change batches (one per run of events of one table) and schema changes; a
  :class:`MessageEncoder` turns a batch into one value per event (``None`` = no value, a
  tombstone) and the primary key of each event into a key.  Message formats
  (:mod:`formats.message`) implement it; the Kafka connectors use it directly and files of
  messages (:mod:`formats.file.messages`) through the same objects.  It lives here, below
  both families, so that message formats can open files of messages and files of messages
  can decode messages without importing each other.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError
from runtime.schema import SchemaChange, TableSchema

#: Called with each bad record a reader meets: ``(error, record)`` where ``record`` is the raw
#: line (bytes) or row (dict).  Returns to skip the record, raises to stop.
BadRecordHandler = Callable[[BadRecordError, Any], None]


@dataclass
class Decoded:
    """What a decoder made of messages ``0..n-1``.

    ``elements`` are batches and schema changes in message order; ``indexes[i]`` lists, for
    ``elements[i]``, the message index of each of its events (one for a schema change), in
    increasing order: a list, or a ``range`` when they are contiguous (a whole take decoded
    at once: no Python object per message).
    ``bad`` lists ``(message index, reason)`` of the messages that could not be decoded.
    Tombstones (no value) and messages that carry no change (e.g. a transaction marker) are in
    none of them.
    """

    elements: list[ChangeBatch | SchemaChange] = field(default_factory=list)
    indexes: list[Sequence[int]] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)


class MessageDecoder(ABC):
    """Decodes messages of one topic (stateful: keeps the schema seen per table)."""

    @abstractmethod
    def decode(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
               timestamps: Sequence[int], topic: str) -> Decoded:
        """Decode the messages; ``timestamps`` are their times (epoch ms), the event time of
        events whose format carries none.  Never raises for a bad message: lists it in
        ``Decoded.bad``."""


class MessageEncoder(ABC):
    """Encodes batches of change events."""

    @abstractmethod
    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        """One value per event of ``batch``, in order."""

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        """:meth:`encode` as one Arrow array (string or binary; null = no value), for writers
        that keep or send whole arrays (the Kafka sink).  Default: :meth:`encode`'s list;
        encoders that build the values with Arrow kernels return their array as it is (and
        their :meth:`encode` splits it, :func:`formats.message.values.split_utf8`)."""
        return pa.array(self.encode(batch, topic), pa.binary())

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        """:meth:`encode_keys` as one Arrow array like :meth:`encode_arrow`; None when no event
        has a key (a table without a primary key)."""
        out = self.encode_keys(batch, topic)
        return None if out.count(None) == len(out) else pa.array(out, pa.binary())

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        """One key per event (the primary key), ``None`` for tables without one.  Default:
        the key columns as this format's value of a key-only row."""
        schema = batch.schema
        if not schema.primary_key:
            return [None] * len(batch)
        idx = schema.key_indexes
        key_schema = TableSchema(schema.table, tuple(schema.columns[i] for i in idx),
                                 schema.primary_key)
        rows = [tuple(r[i] for i in idx) for r in batch.rows()]
        return self.encode(ChangeBatch(key_schema, "c" * len(rows), rows=rows), topic)
