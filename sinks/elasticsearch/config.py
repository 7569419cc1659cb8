"""Options of the Elasticsearch sink."""
from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from runtime.config import ConnectorConfig, Duration, Size, check_template
from runtime.errors import ConfigError
from runtime.schema import split_table_id



class ElasticsearchSinkConfig(ConnectorConfig):
    """Typed options of ``type = "elasticsearch"`` (Elasticsearch 8/9, OpenSearch)."""

    summary: ClassVar[str] = "Documents in Elasticsearch/OpenSearch indexes, exactly once"

    hosts: list[str] = Field(
        ["http://localhost:9200"], min_length=1,
        description="Node URLs, e.g. [\"https://es1:9200\", \"https://es2:9200\"].")
    username: str | None = Field(None, description="User for HTTP basic auth.")
    password: SecretStr | None = Field(None, description="Password for HTTP basic auth.")
    api_key: SecretStr | None = Field(None, description="API key (instead of user/password).")
    ca_certs: str | None = Field(None, description="CA bundle to verify the server with.")
    verify_certs: bool = Field(True, description="Verify TLS certificates.")
    compatibility_mode: bool | Literal["auto"] = Field(
        "auto", description="Send the Elasticsearch REST compatibility media type (what the "
                            "elasticsearch 8/9 client does; OpenSearch and Elasticsearch 7 "
                            "answer it with 406).  auto: ask the server (GET /) on connecting "
                            "and send it unless the server says it is OpenSearch "
                            "(version.distribution); true/false: always/never.")
    index: str = Field(
        "{db}_{table}", description="Index of a table; {db} and {table} are replaced by the "
                                    "parts of the table id, lower-cased, with every character "
                                    "an index name can't hold (not a-z, 0-9, _ . + -) "
                                    "replaced by _ and leading _ - + . dropped. Two tables "
                                    "whose names differ but whose index names don't (Orders "
                                    "and orders) stop the pipeline with an error naming both; "
                                    "the same name from the same text (\"{table}\" for "
                                    "shop1.orders and shop2.orders) is a deliberate merge.")
    key_delimiter: str = Field(
        "_", min_length=1,
        description="Joins the values of a composite primary key into the document _id.")
    delivery: Literal["exactly-once", "at-least-once"] = Field(
        "exactly-once", description="exactly-once: a write-ahead log, applied after the "
                                    "checkpoint; at-least-once: write at once (still idempotent).")
    bulk_max_actions: int = Field(2000, ge=1, description="Actions per bulk request at most.")
    bulk_max_size: Size = Field("8MB", validate_default=True,
                                description="Bytes per bulk request at most.")
    apply_threads: int = Field(
        4, ge=1, le=64, description="Write-ahead-log segments (one per writer subtask) a "
                                    "commit applies at the same time, each over a connection "
                                    "of its own (exactly-once).")
    max_retries: int = Field(6, ge=0, description="Retries of a bulk request or of its items "
                                                  "rejected with 429/5xx, with backoff.")
    retry_backoff: Duration = Field("200ms", validate_default=True,
                                    description="First backoff; doubles up to 10s.")
    request_timeout: Duration = Field("60s", validate_default=True,
                                      description="Timeout of one request.")
    decimal_mapping: Literal["scaled_float", "keyword", "double"] = Field(
        "scaled_float", description="Mapping of DECIMAL columns (values are always sent as "
                                    "exact decimal text, so _source stays exact).")
    timestamp_mapping: Literal["date_nanos", "date"] = Field(
        "date_nanos", description="Mapping of TIMESTAMP columns: date_nanos keeps micro- and "
                                  "nanoseconds searchable, date (milliseconds) reaches years "
                                  "before 1970 and after 2262.")
    json_mapping: Literal["object", "flattened", "keyword"] = Field(
        "object", description="Mapping of JSON columns (flattened is Elasticsearch-only).")
    index_settings: dict[str, str | int | bool] = Field(
        default_factory=dict, description="Settings of created indexes, e.g. "
                                          "{number_of_shards = 1, number_of_replicas = 0}.")
    refresh_after_commit: bool = Field(
        False, description="Refresh the written indexes after each commit (for tests and "
                           "demos; costs throughput).")

    @field_validator("index")
    @classmethod
    def _check_index(cls, v: str) -> str:
        check_template(v, ("db", "table"), "index")
        probe = v.replace("{db}", "d").replace("{table}", "t")
        if probe != probe.lower() or not re.fullmatch(r"[a-z0-9][a-z0-9_.+-]*", probe):
            raise ValueError(f"index {v!r}: index names are lower case, without spaces or "
                             "\\/*?\"<>|,#: and do not start with -, _ or +")
        return v

    def index_for(self, table_id: str) -> str:
        """The index name of ``table_id`` (``"shop.orders"`` -> ``"shop_orders"``).

        The mapping, documented on ``index``: {db} and {table} lower-cased, every character
        an index name can't hold (anything but a-z, 0-9, ``_ . + -``, so also spaces, quotes,
        slashes and non-ASCII letters) replaced by ``_``, and leading ``_ - + .`` dropped.
        Raises :class:`ConfigError` naming the table when no valid name is left (empty, or
        longer than 255 bytes).  Distinct tables may map to one name (``A b`` and ``a_b``):
        the applier refuses that (see :meth:`index_source`)."""
        db, table = _parts(table_id)
        name = self.index.replace("{db}", db.lower()).replace("{table}", table.lower())
        name = re.sub(r"[^a-z0-9_.+-]", "_", name).lstrip("_-+.")
        if not name or len(name) > 255:
            why = "empty" if not name else "longer than 255 bytes"
            raise ConfigError(f"elasticsearch: table {table_id!r} gives no valid index name "
                              f"from index {self.index!r} ({why}); set index so that it does",
                              key="index")
        return name

    def index_source(self, table_id: str) -> str:
        """``index`` with the table's own names, before :meth:`index_for` made them valid:
        two tables with the same index name but different sources collide (``Orders`` and
        ``orders``), while the same source is a deliberate merge (``index = "{table}"`` for
        shards ``shop1.orders`` and ``shop2.orders``, or an index without placeholders)."""
        db, table = _parts(table_id)
        return self.index.replace("{db}", db).replace("{table}", table)


def _parts(table_id: str) -> tuple[str, str]:
    try:
        return split_table_id(table_id)
    except ValueError as exc:  # a malformed id (from a route, say)
        raise ConfigError(f"elasticsearch: table {table_id!r}: {exc}", key="index") from None
