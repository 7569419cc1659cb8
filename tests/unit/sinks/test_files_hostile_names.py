"""Files sink: database and table names are data, never paths.  Hostile names, through the
real writer and committer on a temporary folder, all land below the root, each in a folder
of its own whose name decodes back to the table's name."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import sinks.files.writer as files_writer
from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.fs import decode_segment, encode_segment, is_below, path_under
from runtime.schema import Column, TableSchema
from runtime.types import T
from sink_helpers import commit_context, files_sink, writer_context

HOSTILE = ["../x", "../../../escape", "..", ".", ".hidden", "a.b", "a..b", "x/y", "x\\y",
           "/abs", "it's", 'say "hi"', "drop; table", "with space", "ünï℃ödé", "tab\there",
           "nul\x00byte", "100%", "%2E", "c:d", "#LATEST", "orders"]


@pytest.fixture
def ids(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], str]:
    """(db, name) -> a table id for it: :func:`runtime.schema.table_id` where it exists;
    before that, opaque ids resolved by a stand-in for ``split_table_id``."""
    pairs = [("shop", n) for n in HOSTILE] + [(n, "t") for n in HOSTILE if n != "orders"]
    try:
        from runtime.schema import table_id  # type: ignore[attr-defined]
    except ImportError:
        by_id = {f"id{i}": pair for i, pair in enumerate(pairs)}
        monkeypatch.setattr(files_writer, "split_table_id", by_id.__getitem__)
        return {pair: i for i, pair in by_id.items()}
    return {pair: table_id(*pair) for pair in pairs}


def _batch(table: str, n: int) -> ChangeBatch:
    schema = TableSchema(table, (Column("id", T("BIGINT"), False),), ("id",))
    return ChangeBatch.of_rows(schema, [(i,) for i in range(n)])


def _files(top: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(top) for f in files]


def test_hostile_names_stay_below_the_root_and_distinct(
        tmp_path: Path, ids: dict[tuple[str, str], str]) -> None:
    root = tmp_path / "1" / "2" / "3" / "4" / "lake"  # deep: an escape stays inside tmp_path
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(), None)
    for n, table in enumerate(ids.values(), start=1):
        writer.write(_batch(table, n))  # n rows: tells the tables' files apart
    committables = writer.prepare_commit(1)
    assert sink.create_committer().commit(committables, commit_context()) == []

    files = _files(tmp_path)
    assert files and all(is_below(str(f), str(root)) for f in files), \
        [str(f) for f in files if not is_below(str(f), str(root))]
    folders = {f.parent.relative_to(root).parts: f for f in files}
    assert len(folders) == len(ids) == len(files)  # one folder and file per table
    decoded = {tuple(decode_segment(p) for p in parts) for parts in folders}
    assert decoded == set(ids)
    # ordinary names keep the layout of existing lakes
    assert (root / "shop" / "orders").is_dir()
    assert (root / "shop" / "a.b").is_dir() and (root / "shop" / "ünï℃ödé").is_dir()
    assert (root / "shop" / "drop; table").is_dir() and (root / "shop" / "it's").is_dir()
    # and every visible part file (no hidden folder hides a table from readers)
    assert not [f for f in files if any(p.startswith(".") for p in f.relative_to(root).parts)]


@pytest.mark.parametrize("name, segment", [
    ("orders", "orders"), ("a.b", "a.b"), ("drop; table", "drop; table"), ("ü", "ü"),
    ("..", "%2E."), (".", "%2E"), ("../x", "%2E.%2Fx"), ("a/b", "a%2Fb"), ("a\\b", "a%5Cb"),
    ("n\x00", "n%00"), ("\n", "%0A"), ("50%", "50%25"), ("c:d", "c%3Ad"), ("#L", "%23L"),
    ("a#", "a#"),
])
def test_encode_segment(name: str, segment: str) -> None:
    assert encode_segment(name) == segment
    assert decode_segment(segment) == name


def test_path_under_refuses_what_leaves_the_root(tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    assert path_under(root, "a", "b") == os.path.join(root, "a", "b")
    for parts in (("..",), ("a", "../.."), ("/etc",), ("",), (".",)):
        with pytest.raises(ValueError):
            path_under(root, *parts)
    url = "hdfs://nn:9870/lake"
    assert path_under(url, "db", "t") == url + "/db/t"
    with pytest.raises(ValueError):
        path_under(url, "../x")
    assert not is_below("hdfs://other:9870/lake/x", url)


def test_a_partition_outside_its_table_is_refused_naming_the_table(root: Path) -> None:
    writer = files_sink(root).create_writer(writer_context(), None)
    writer._partitioner.split = lambda table, table_id="": [  # type: ignore[method-assign]
        (files_writer.Partition("../../../escape", None), table)]
    with pytest.raises(TerminalError, match=r"table 'shop\.orders'.*refused"):
        writer.write(_batch("shop.orders", 1))


def test_a_committable_outside_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / ".part-p1-a1-0-0.parquet.inprogress").write_bytes(b"x")
    committer = files_sink(root).create_committer()
    with pytest.raises(TerminalError, match="outside"):
        committer.commit([{"kind": "file", "pending": str(outside / ".part-p1-a1-0-0.parquet"
                                                                    ".inprogress"),
                           "final": str(outside / "part-p1-a1-0-0.parquet"), "rows": 1}],
                         commit_context())
    assert not (outside / "part-p1-a1-0-0.parquet").exists()


def test_a_table_with_an_empty_name_is_refused_naming_it(root: Path) -> None:
    writer = files_sink(root).create_writer(writer_context(), None)
    with pytest.raises(TerminalError, match=r"^files sink: table 'shop\.' has no folder"):
        writer.write(_batch("shop.", 1))
    assert not root.exists() or not any(root.iterdir())


def test_a_table_name_too_long_for_a_folder_is_refused_naming_it(root: Path) -> None:
    writer = files_sink(root).create_writer(writer_context(), None)
    with pytest.raises(TerminalError, match=r"^files sink: table 'shop\.ééé.*longer than 255 "
                                            r"bytes; route the table"):
        writer.write(_batch("shop." + "é" * 128, 1))  # 256 bytes
    writer.write(_batch("shop." + "é" * 127, 1))  # 254 bytes: fine
