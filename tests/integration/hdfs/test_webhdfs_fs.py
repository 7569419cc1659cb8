"""runtime.fs over WebHDFS: the operations the files sink, the files source and checkpoint
storage rely on, with HDFS semantics (two-step create/open, rename never replaces)."""
from __future__ import annotations

import os

import pytest

from runtime.fs import filesystem

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]


def test_create_stream_rename_and_read(hdfs_dir):
    fs = filesystem(hdfs_dir)
    pending, final = f"{hdfs_dir}/a/b/.part-0.inprogress", f"{hdfs_dir}/a/b/part-0"
    out = fs.create(pending)  # parent folders are created by CREATE
    data = os.urandom(3 * (1 << 20) + 123)  # several chunks and a partial one
    for i in range(0, len(data), 100_000):
        out.write(data[i:i + 100_000])
    assert out.tell() == len(data)
    out.close()
    assert fs.status(pending).size == len(data)
    assert fs.rename(pending, final) is True
    assert fs.rename(pending, final) is False  # source gone: a replayed commit
    assert fs.read_bytes(final) == data
    local, temporary = fs.local_copy(final)
    try:
        assert temporary and open(local, "rb").read() == data
    finally:
        os.remove(local)


def test_rename_never_replaces_an_existing_file(hdfs_dir):
    fs = filesystem(hdfs_dir)
    fs.write_bytes(f"{hdfs_dir}/x", b"old")
    fs.write_bytes(f"{hdfs_dir}/y", b"new")
    assert fs.rename(f"{hdfs_dir}/y", f"{hdfs_dir}/x") is False
    assert fs.read_bytes(f"{hdfs_dir}/x") == b"old"


def test_write_atomically_replaces(hdfs_dir):
    fs = filesystem(hdfs_dir)
    fs.makedirs(hdfs_dir)
    fs.write_atomically(f"{hdfs_dir}/_metadata", b"1")
    fs.write_atomically(f"{hdfs_dir}/_metadata", b"2")
    assert fs.read_bytes(f"{hdfs_dir}/_metadata") == b"2"
    assert [e.name for e in fs.listdir(hdfs_dir)] == ["_metadata"]  # no temporary left


def test_create_refuses_an_existing_file(hdfs_dir):
    fs = filesystem(hdfs_dir)
    fs.write_bytes(f"{hdfs_dir}/f", b"x")
    out = fs.create(f"{hdfs_dir}/f")
    out.write(b"y")
    with pytest.raises(FileExistsError, match="/f"):
        out.close()
    assert fs.read_bytes(f"{hdfs_dir}/f") == b"x"


def test_abort_deletes_the_file(hdfs_dir):
    fs = filesystem(hdfs_dir)
    out = fs.create(f"{hdfs_dir}/gone")
    out.write(b"z" * 10)
    out.abort()
    assert not fs.exists(f"{hdfs_dir}/gone")


def test_listing_walk_glob_and_errors(hdfs_dir):
    fs = filesystem(hdfs_dir)
    for p in ("in/2026/a.csv", "in/2026/b.csv", "in/2027/c.csv", "in/2027/d.json"):
        fs.write_bytes(f"{hdfs_dir}/{p}", b"1\n")
    assert fs.isdir(f"{hdfs_dir}/in") and not fs.isdir(f"{hdfs_dir}/in/2026/a.csv")
    names = sorted(f.name for _d, _s, files in fs.walk(f"{hdfs_dir}/in") for f in files)
    assert names == ["a.csv", "b.csv", "c.csv", "d.json"]
    assert [e.name for e in fs.glob(f"{hdfs_dir}/in/*/*.csv")] == ["a.csv", "b.csv", "c.csv"]
    assert [e.name for e in fs.glob(f"{hdfs_dir}/**/*.json")] == ["d.json"]
    assert [e.name for e in fs.glob(f"{hdfs_dir}/in/202[6]/?.csv")] == ["a.csv", "b.csv"]
    with pytest.raises(FileNotFoundError):
        fs.listdir(f"{hdfs_dir}/missing")
    assert fs.status(f"{hdfs_dir}/missing") is None
    assert list(fs.walk(f"{hdfs_dir}/missing")) == []
    assert fs.remove(f"{hdfs_dir}/in/2026/a.csv") and not fs.remove(f"{hdfs_dir}/in/2026/a.csv")
    fs.rmtree(f"{hdfs_dir}/in")
    assert not fs.exists(f"{hdfs_dir}/in")


def test_unreachable_namenode_is_a_connection_error():
    from tests.servers.common import free_port

    url = f"hdfs://127.0.0.1:{free_port()}/x"
    with pytest.raises(ConnectionError, match="127.0.0.1"):
        filesystem(url).status(url)
