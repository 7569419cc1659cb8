"""Options of the Kafka source."""
from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, model_validator

from formats.message.base import MessageFormat
from formats.registry import resolve_message_format, with_format_checks
from runtime.clientlog import client_log
from runtime.config import Duration


class KafkaSourceConfig(with_format_checks("message")):
    """Typed options of ``type = "kafka"`` (source).  Validating resolves the format, so an
    unknown format or a bad format option fails with its key path."""

    summary: ClassVar[str] = "records of Kafka topics (Debezium, Canal, Maxwell, JSON, Avro, raw)"

    bootstrap_servers: str = Field(description="Kafka brokers, \"host:port,host:port\"")
    topics: list[str] = Field([], description="topics to read (or topic-pattern)")
    topic_pattern: str | None = Field(None, description=(
        "regular expression of topic names to read; new matching topics and partitions are "
        "found while running (see partition-discovery-interval)"))
    group_id: str | None = Field(None, description=(
        "consumer group: offsets are committed to it after each completed checkpoint (for "
        "monitoring; the checkpoint is what a restart resumes from) and read by "
        "startup-mode = \"group-offsets\""))
    startup_mode: Literal["earliest", "latest", "group-offsets", "timestamp",
                          "specific-offsets"] = Field("earliest", description=(
        "where partitions start when there is no checkpoint; partitions found later while "
        "running start at their earliest offset"))
    startup_timestamp: int | None = Field(None, description=(
        "epoch milliseconds for startup-mode = \"timestamp\": the first record at or after it"))
    startup_specific_offsets: dict[str, int] = Field({}, description=(
        "\"topic:partition\" -> offset for startup-mode = \"specific-offsets\" (others: "
        "earliest)"))
    bounded: Literal["none", "latest-offset"] = Field("none", description=(
        "\"latest-offset\": read up to the offsets that are latest at start, then end"))
    format: str = Field("json", description=(
        "message format of values: json, debezium-json, canal-json, maxwell-json, avro, raw"))
    format_options: dict[str, Any] = Field({}, description=(
        "options of the format, e.g. { columns = { id = \"BIGINT\" }, primary-key = [\"id\"] }"))
    schema_registry_url: str | None = Field(None, description=(
        "Confluent Schema Registry URL (format = \"avro\")"))
    event_time: Literal["message", "payload"] = Field("message", description=(
        "event time of the events (drives watermarks): \"message\" = the record timestamp; "
        "\"payload\" = the time the format carries (Debezium source.ts_ms, Canal es...), "
        "else the record timestamp"))
    partition_discovery_interval: Duration = Field(10.0, ge=0, description=(
        "how often to look for new partitions and topics while running (0 = never)"))
    max_batch_messages: int = Field(10_000, ge=1, le=1_000_000, description=(
        "records taken from the client per poll, decoded together"))
    isolation_level: Literal["read_committed", "read_uncommitted"] = Field(
        "read_committed", description="read_committed: skip records of aborted transactions")
    properties: dict[str, Any] = Field({}, description=(
        "librdkafka consumer properties (security.protocol, sasl.*, fetch.max.bytes...)"))

    _format: MessageFormat | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check(self) -> KafkaSourceConfig:
        if bool(self.topics) == bool(self.topic_pattern):
            raise ValueError("give exactly one of topics and topic-pattern")
        if self.topic_pattern is not None:
            try:
                re.compile(self.topic_pattern)
            except re.error as exc:
                raise ValueError(f"topic-pattern: {exc}") from None
        if self.startup_mode == "timestamp" and self.startup_timestamp is None:
            raise ValueError("startup-mode = \"timestamp\" needs startup-timestamp")
        # an option given but never read would be a silent change of what the user asked for
        if self.startup_timestamp is not None and self.startup_mode != "timestamp":
            raise ValueError(f"startup-timestamp is read only with startup-mode = "
                             f"\"timestamp\" (startup-mode is \"{self.startup_mode}\")")
        if self.startup_specific_offsets and self.startup_mode != "specific-offsets":
            raise ValueError(f"startup-specific-offsets is read only with startup-mode = "
                             f"\"specific-offsets\" (startup-mode is \"{self.startup_mode}\")")
        if self.schema_registry_url and self.format != "avro":
            raise ValueError(f"schema-registry-url is read only with format = \"avro\" "
                             f"(format is \"{self.format}\")")
        if self.startup_mode == "group-offsets" and not self.group_id:
            raise ValueError("startup-mode = \"group-offsets\" needs group-id")
        for k in self.startup_specific_offsets:
            topic, _, part = k.rpartition(":")
            if not topic or not part.isdigit():
                raise ValueError(f"startup-specific-offsets: {k!r} is not \"topic:partition\"")
        options = dict(self.format_options)
        if self.schema_registry_url and self.format == "avro":
            options.setdefault("schema-registry-url", self.schema_registry_url)
        self._format = resolve_message_format(self.format, options)
        return self

    @property
    def message_format(self) -> MessageFormat:
        assert self._format is not None, "KafkaSourceConfig was built without validation"
        return self._format

    def client_config(self) -> dict[str, Any]:
        """The librdkafka consumer configuration."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id or "hub-kafka-source",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "isolation.level": self.isolation_level,
            "enable.partition.eof": False,
            # librdkafka stops fetching a partition whose prefetched records exceed
            # queued.min.messages, then waits this long (default 1 s) before it looks again:
            # a reader that decodes slower than the broker delivers would stall for a second
            "fetch.queue.backoff.ms": 20,
        }
        # librdkafka's own lines (a broker down: ~20 a second) through our logging, repeats
        # held back; a user's properties may still set log_level or debug
        conf["logger"] = client_log("sources.kafka.client")
        conf.update(self.properties)
        return conf
