"""[[transform]] and [[route]] in pipeline files: loaded into rules, and checked by
``hub validate`` (one line per problem, with its key path and line)."""
from __future__ import annotations

from typing import Any

import pytest

from hub.config import load_pipeline
from hub.errors import ConfigErrors

HEAD = """\
[pipeline]
name = "t"
[source]
type = "datagen"
rows = 10
[sink]
type = "blackhole"
"""


def problems(path: str) -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        load_pipeline(path)
    return str(exc.value).splitlines()


@pytest.fixture
def write(tmp_path: Any) -> Any:
    def write(text: str) -> str:
        p = tmp_path / "pipeline.toml"
        p.write_text(HEAD + text)
        return str(p)
    return write


def test_blocks_become_rules(write: Any) -> None:
    spec = load_pipeline(write("""
[[transform]]
source-table = 'datagen\\.orders'
projection = "id, amount * 2 AS doubled, __table_name__ AS src"
filter = "doubled > 10"
primary-keys = "id, src"
[[route]]
source-table = 'datagen\\.(.*)'
sink-table = "dw.$1"
"""))
    [t] = spec.transforms
    assert (t.source_table, t.filter, t.primary_keys) == ("datagen\\.orders", "doubled > 10",
                                                        ("id", "src"))
    [r] = spec.routes
    assert r.target("datagen.orders") == "dw.orders"




def test_each_problem_names_its_key_and_line(write: Any) -> None:
    path = write("""
[[transform]]
source-table = 'datagen\\.orders'
projection = "id, UPPER(stauts) AS s"
[[transform]]
source-table = 'datagen\\.orders'
filter = "amount > 'x'"
[[transform]]
source-table = 'other\\..*'
projection = "id, FOO(1) AS f"
[[transform]]
source-table = 'other\\..*'
filter = "a +* 2"
[[route]]
source-table = '(a'
sink-table = "x"
""")
    lines = problems(path)
    assert f"{path}:11: transform[0].projection: table datagen.orders: unknown column " \
           "'stauts'; did you mean 'status'?" in lines
    assert f"{path}:14: transform[1].filter: table datagen.orders: amount > 'x': type error: " \
           "greater is not defined for (decimal128(12, 2), string)" in lines
    assert f"{path}:17: transform[2].projection: unknown function FOO; did you mean " \
           "'FLOOR'?" in lines
    assert any(line.startswith(f"{path}:20: transform[3].filter: cannot parse") for line in lines)
    assert any(line.startswith(f"{path}:22: route[0].source-table: not a regular expression")
               for line in lines)
    assert len(lines) == 5


def test_partition_keys_are_checked_against_the_projection(write: Any) -> None:
    path = write("""
[[transform]]
source-table = 'datagen\\.orders'
projection = "id, status"
partition-keys = "amount"
""")
    [line] = problems(path)
    assert line == (f"{path}:12: transform[0].partition-keys: table datagen.orders: "
                    "column(s) ['amount'] are not in the projection")
    spec = load_pipeline(write("""
[[transform]]
source-table = 'datagen\\.orders'
partition-keys = "status, customer_id"
"""))
    assert spec.transforms[0].partition_keys == ("status", "customer_id")
