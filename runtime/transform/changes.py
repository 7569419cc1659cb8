"""Which schema change types a sink applies: Flink CDC's ``include.schema.changes`` and
``exclude.schema.changes`` sink options, with Flink CDC's type tags.

A tag is one change type (``add.column``) or a family of them (``drop``: ``drop.column`` and
``drop.table``; ``column``; ``table``; ``*``: all).  A sink applies the types its include list
names (all when unset) minus those its exclude list names.  Under ``schema-change-behavior =
"lenient"`` an unset exclude list means ``drop.table, truncate.table`` (so that nothing is
lost, as Flink CDC does); setting it, even to ``[]``, replaces that default.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Flink CDC's tag of each schema change kind of ours
TAGS: dict[str, str] = {
    "create_table": "create.table", "add_column": "add.column", "drop_column": "drop.column",
    "rename_column": "rename.column", "alter_column_type": "alter.column.type",
    "truncate_table": "truncate.table", "drop_table": "drop.table",
}
_ALL = tuple(TAGS.values())
#: Flink CDC's families of tags
FAMILIES: dict[str, tuple[str, ...]] = {
    "*": _ALL, "all": _ALL,
    "add": ("add.column",), "alter": ("alter.column.type",), "create": ("create.table",),
    "drop": ("drop.column", "drop.table"), "rename": ("rename.column",),
    "truncate": ("truncate.table",),
    "column": ("add.column", "alter.column.type", "drop.column", "rename.column"),
    "table": ("create.table", "drop.table", "truncate.table"),
}
#: every tag a list may hold, for error messages and docs
VALID_TAGS: tuple[str, ...] = (*_ALL, *FAMILIES)
#: what lenient leaves out when the sink names no exclude list
LENIENT_EXCLUDED = frozenset({"drop.table", "truncate.table"})


def expand(tags: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The change types ``tags`` name; ValueError naming the valid tags for an unknown one."""
    out: set[str] = set()
    for tag in tags:
        t = tag.strip().lower()
        if t in FAMILIES:
            out.update(FAMILIES[t])
        elif t in _ALL:
            out.add(t)
        else:
            raise ValueError(f"unknown schema change type {tag!r}; valid: "
                             f"{', '.join(VALID_TAGS)}")
    return frozenset(out)


@dataclass(frozen=True)
class SchemaChangeFilter:
    """A sink's ``include-schema-changes`` / ``exclude-schema-changes`` (None: not set)."""

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def applied(self, behavior: str) -> frozenset[str]:
        """The schema change kinds (``add_column`` ...) that reach the sink under
        ``behavior`` (before the behavior's own conversions)."""
        inc = expand(self.include) if self.include is not None else frozenset(_ALL)
        if self.exclude is not None:
            exc = expand(self.exclude)
        else:
            exc = LENIENT_EXCLUDED if behavior == "lenient" else frozenset()
        return frozenset(k for k, tag in TAGS.items() if tag in inc - exc)

    @property
    def is_set(self) -> bool:
        return self.include is not None or self.exclude is not None
