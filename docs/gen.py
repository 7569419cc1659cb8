"""Regenerate the generated parts of the pages under docs/ from the code, so they can't drift.

A page marks each generated part with a pair of HTML comments::

    <!-- BEGIN GENERATED options source kafka -->
    ... (replaced) ...
    <!-- END GENERATED -->

Generators: ``options KIND NAME`` (a plugin's options, from its config model), ``options
section NAME`` (``[checkpoint]`` ...), ``options block NAME`` (``[[transform]]``, ``[[route]]``), ``types TARGET`` (the type map of a sink or source,
computed by calling its type functions on sample logical types).

Usage (from the repository root, in the environment the hub is installed in)::

    python docs/gen.py          # rewrite the pages
    python docs/gen.py --check  # exit 1 naming the pages that are out of date (the tests run it)
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

_BLOCK = re.compile(r"(<!-- BEGIN GENERATED ([^>]*?) -->\n)(.*?)(<!-- END GENERATED -->)", re.S)

#: Logical types the type tables show, one per row.
SAMPLE_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL(10,2)",
                "DECIMAL(20,0)", "DECIMAL(65,30)", "FLOAT", "DOUBLE", "CHAR(3)", "VARCHAR(255)",
                "STRING", "BINARY(16)", "VARBINARY(255)", "BYTES", "DATE", "TIME(0)", "TIME(6)",
                "TIMESTAMP(3)", "TIMESTAMP(6)", "TIMESTAMP_LTZ(6)", "JSON", "ARRAY<STRING>")
#: MySQL column types the MySQL source's table shows.
SAMPLE_MYSQL = ("tinyint", "tinyint unsigned", "smallint", "mediumint", "int", "int unsigned",
                "bigint", "bigint unsigned", "decimal(12,2)", "float", "double", "bit(1)",
                "bit(12)", "year", "date", "time(3)", "datetime(6)", "timestamp(6)", "char(10)",
                "varchar(255)", "text", "binary(16)", "varbinary(64)", "blob",
                "enum('a','b')", "set('a','b')", "json", "geometry", "point")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def options(kind: str, name: str) -> str:
    from hub.registry import describe_plugin, list_sections

    if kind == "section":
        [info] = [s for s in list_sections() if s.name == name]
    elif kind == "block":  # [[transform]], [[route]]
        from hub.registry import PluginInfo, describe_options
        from hub.transforms import BLOCKS

        info = PluginInfo("section", name, options=describe_options(BLOCKS[name]))
    else:
        info = describe_plugin(kind, name)
        if info.error:
            raise SystemExit(f"{kind} {name} can't be loaded: {info.error}")
    rows = [(f"`{o.name}`", f"`{o.type}`", "required" if o.required else f"`{o.default}`",
             o.description) for o in info.options]
    return _table(("option", "type", "default", "description"), rows)


def _mapped(fn: Callable[[object], object]) -> list[tuple[object, ...]]:
    from runtime.types import parse_type

    rows = []
    for text in SAMPLE_TYPES:
        try:
            target = f"`{fn(parse_type(text))}`"
        except Exception as exc:  # noqa: BLE001 - a type the target can't hold: say so
            target = f"error: {exc}"
        rows.append((f"`{text}`", target))
    return rows


def types(target: str) -> str:
    if target == "jdbc":
        from sinks.jdbc.types import mysql_type, postgres_type
        from runtime.types import parse_type

        rows = [(f"`{t}`", f"`{postgres_type(parse_type(t))}`",
                 f"`{mysql_type(parse_type(t))}`") for t in SAMPLE_TYPES]
        return _table(("logical type", "PostgreSQL column", "MySQL/MariaDB column"), rows)
    if target == "delta":
        from sinks.delta.types import delta_type

        return _table(("logical type", "Delta column (Arrow type)"), _mapped(delta_type))
    if target == "iceberg":
        from sinks.iceberg.types import iceberg_type

        return _table(("logical type", "Iceberg type"),
                      _mapped(lambda t: iceberg_type(t, "column c")))  # type: ignore[arg-type]
    if target == "elasticsearch":
        import json

        from sinks.elasticsearch.types import field_mapping

        return _table(("logical type", "mapping (defaults)"),
                      _mapped(lambda t: json.dumps(field_mapping(t))))  # type: ignore[arg-type]
    if target == "mysql-source":
        from formats.mysqltypes import from_mysql

        rows = [(f"`{t}`", f"`{from_mysql(t)}`") for t in SAMPLE_MYSQL]
        return _table(("MySQL/MariaDB column", "logical type"), rows)
    raise SystemExit(f"unknown type table {target!r}")


GENERATORS: dict[str, Callable[..., str]] = {"options": options, "types": types}


def render(text: str, page: Path) -> str:
    def replace(m: re.Match[str]) -> str:
        what, *args = m.group(2).split()
        if what not in GENERATORS:
            raise SystemExit(f"{page}: unknown generator {what!r}")
        return m.group(1) + GENERATORS[what](*args) + m.group(4)

    return _BLOCK.sub(replace, text)


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 naming the pages out of date")
    args = parser.parse_args(argv)
    stale = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        new = render(text, page)
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new, encoding="utf-8")
    for page in stale:
        verb = "out of date" if args.check else "updated"
        print(f"{page.relative_to(ROOT)}: {verb}", file=sys.stderr)
    if args.check and stale:
        print("run  python docs/gen.py  to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
