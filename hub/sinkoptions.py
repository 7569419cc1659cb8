"""Options every ``[sink]`` has, whatever its type: which schema change types it applies
(Flink CDC's ``include.schema.changes`` / ``exclude.schema.changes``, here in the file's
kebab-case).  They are taken out of ``[sink]`` before the connector validates its own options,
and applied by the operator chained before the sink's writers
(:class:`~runtime.transform.operator.TransformingSink`): no connector handles them itself."""
from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from runtime.config import ConnectorConfig
from runtime.transform.changes import VALID_TAGS, SchemaChangeFilter, expand

_TAGS = ", ".join(VALID_TAGS)


class SinkSchemaChangeOptions(ConnectorConfig):
    """``[sink]`` options of every sink"""

    include_schema_changes: list[str] | None = Field(None, description=(
        "Schema change types the sink applies (Flink CDC's include.schema.changes), e.g. "
        "[\"add.column\", \"alter.column.type\"]: " + _TAGS + " (a family: drop = "
        "drop.column and drop.table; column; table; * = all).  Default: all."))
    exclude_schema_changes: list[str] | None = Field(None, description=(
        "Schema change types the sink skips (Flink CDC's exclude.schema.changes), e.g. "
        "[\"drop.column\", \"truncate.table\"]; wins over include-schema-changes.  A skipped "
        "change leaves the sink's table as it is and later rows are written to it as it is "
        "(a dropped column stays and is NULL, a column never added is left out).  Default: "
        "none, and under schema-change-behavior = \"lenient\" drop.table and truncate.table "
        "(setting it, even to [], replaces that)."))

    @field_validator("include_schema_changes", "exclude_schema_changes")
    @classmethod
    def _check_tags(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            expand(v)  # ValueError naming the valid tags
        return v

    def filter(self) -> SchemaChangeFilter:
        return SchemaChangeFilter(
            None if self.include_schema_changes is None else tuple(self.include_schema_changes),
            None if self.exclude_schema_changes is None else tuple(self.exclude_schema_changes))


#: the ``[sink]`` keys of :class:`SinkSchemaChangeOptions`
KEYS = ("include-schema-changes", "exclude-schema-changes")


def split_options(table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``[sink]``'s keys as (the connector's, these common ones)."""
    return ({k: v for k, v in table.items() if k not in KEYS},
            {k: v for k, v in table.items() if k in KEYS})
