"""Options of the Kafka sink."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from formats.message.base import MessageFormat
from formats.registry import check_format, check_format_options, resolve_message_format
from runtime.clientlog import client_log
from runtime.config import ConnectorConfig, Duration
from runtime.schema import split_table_id


class KafkaSinkConfig(ConnectorConfig):
    """Typed options of ``type = "kafka"`` (sink).  Validating resolves both formats."""

    summary: ClassVar[str] = "records in Kafka topics, exactly once with transactions"

    bootstrap_servers: str = Field(description="Kafka brokers, \"host:port,host:port\"")
    topic: str = Field(description=(
        "topic of the records, a template: {table} is the table id (db.table), {db} and "
        "{name} its parts, e.g. \"cdc.{db}.{name}\""))
    format: str = Field("json", description=(
        "message format of values: json, debezium-json, canal-json, maxwell-json, avro, raw"))
    format_options: dict[str, Any] = Field({}, description="options of the value format")
    key_format: str | None = Field(None, description=(
        "message format of keys (the primary key; tables without one get no key); default: "
        "the value format with its format-options where that format has a key form of its "
        "own (debezium-json: Debezium's key, schema part included with schema-include; "
        "avro; maxwell-json; json), else json (canal-json, raw)"))
    key_format_options: dict[str, Any] = Field({}, description=(
        "options of the key format (without key-format: laid over the value format's "
        "options when keys follow the value format)"))
    schema_registry_url: str | None = Field(None, description=(
        "Confluent Schema Registry URL (format or key-format = \"avro\")"))
    delivery: Literal["exactly-once", "at-least-once", "none"] = Field(
        "exactly-once", description=(
            "exactly-once: transactions committed after each checkpoint (consumers with "
            "isolation.level=read_committed see each record once); at-least-once: flushed at "
            "each checkpoint; none: no flush at checkpoints"))
    transactional_id_prefix: str | None = Field(None, description=(
        "prefix of the transactional ids and of the marker groups (default: hub-<pipeline>); "
        "must be unique per pipeline on the cluster"))
    transaction_timeout: Duration = Field(900.0, gt=0, description=(
        "transaction.timeout.ms: must exceed checkpoint.interval plus checkpoint.timeout "
        "(checked when the pipeline is validated; the broker's transaction.max.timeout.ms "
        "caps it, 15min by default)"))
    tombstones: bool = Field(False, description=(
        "after the record of a delete, write a tombstone (the key without a value) so that "
        "compacted topics drop the key"))
    properties: dict[str, Any] = Field({}, description=(
        "librdkafka producer properties (compression.type, linger.ms, security...)"))

    _format: MessageFormat | None = PrivateAttr(None)
    _key_format: MessageFormat | None = PrivateAttr(None)

    @field_validator("topic")
    @classmethod
    def _check_topic(cls, v: str) -> str:
        try:
            v.format(table="d.t", db="d", name="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"topic template {v!r}: only {{table}}, {{db}} and {{name}} can be "
                             f"used ({exc})") from None
        return v

    @field_validator("format", "key_format")
    @classmethod
    def _check_format(cls, v: str | None) -> str | None:
        return None if v is None else check_format(v, "message")

    @field_validator("format_options", "key_format_options")
    @classmethod
    def _check_format_options(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # checked here, not only when the formats are resolved below: that needs every field
        # valid, and a bad format option is reported with the other bad options of the file
        name = info.field_name.removesuffix("_options") if info.field_name else "format"
        fmt = info.data.get(name)
        if name == "key_format" and fmt is None:
            return v  # keys follow the value format: checked with its options in _resolve
        return check_format_options(fmt, v, "message")

    @field_validator("properties")
    @classmethod
    def _check_properties(cls, v: dict[str, Any]) -> dict[str, Any]:
        owned = {"transactional.id", "transaction.timeout.ms", "bootstrap.servers"}
        clash = sorted(owned & set(v))
        if clash:
            raise ValueError(f"{clash[0]} is set by the sink (use its own option)")
        return v

    @model_validator(mode="after")
    def _resolve(self) -> KafkaSinkConfig:
        def options(given: dict[str, Any], name: str) -> dict[str, Any]:
            out = dict(given)
            if self.schema_registry_url and name == "avro":
                out.setdefault("schema-registry-url", self.schema_registry_url)
            return out

        key_name, key_options = self.key_format, self.key_format_options
        self._format = resolve_message_format(self.format, options(self.format_options,
                                                                   self.format))
        if key_name is None:
            # Kafka Connect / Debezium users get the value format's own keys (Debezium's key
            # struct for debezium-json) without saying so twice
            follows = type(self._format).has_key_form
            key_name = self.format if follows else "json"
            key_options = {**self.format_options, **key_options} if follows else key_options
        if self.schema_registry_url and "avro" not in (self.format, key_name):
            # given but never read: a silent change of what the user asked for
            raise ValueError(f"schema-registry-url is read only with format or key-format = "
                             f"\"avro\" (format is \"{self.format}\", key-format "
                             f"\"{key_name}\")")
        self._key_format = resolve_message_format(
            key_name, options(key_options, key_name), key="key-format")
        return self

    @property
    def value_format(self) -> MessageFormat:
        assert self._format is not None
        return self._format

    @property
    def key_message_format(self) -> MessageFormat:
        assert self._key_format is not None
        return self._key_format

    def topic_of(self, table: str) -> str:
        db, name = split_table_id(table)
        return self.topic.format(table=table, db=db, name=name)

    def producer_config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            # the Java client's key hashing: consumers and Kafka Streams agree on partitions
            "partitioner": "murmur2_random",
            "linger.ms": 5, "acks": "all", "enable.idempotence": True,
            "delivery.report.only.error": True,
        }
        # librdkafka's own lines (a broker down: ~20 a second) through our logging, repeats
        # held back; a user's properties may still set log_level or debug
        conf["logger"] = client_log("sinks.kafka.client")
        conf.update(self.properties)
        return conf
