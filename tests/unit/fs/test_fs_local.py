"""runtime.fs: the local filesystem, path helpers, and the generic glob/walk HDFS uses."""
from __future__ import annotations

import glob
import os

import pytest

from runtime.fs import FileSystem, filesystem, is_url, normpath, url_from_abspath
from runtime.fs.local import LOCAL


def test_create_close_is_complete_and_abort_deletes(tmp_path):
    path = str(tmp_path / "a" / "b" / ".part.inprogress")  # missing folders are created
    out = LOCAL.create(path)
    out.write(b"x" * 10)
    assert out.tell() == 10 and not out.closed
    out.close()
    out.close()  # idempotent
    assert out.closed and open(path, "rb").read() == b"x" * 10
    other = LOCAL.create(str(tmp_path / "gone"))
    other.write(b"y")
    other.abort()
    assert not os.path.exists(tmp_path / "gone")


def test_rename_reports_a_missing_source(tmp_path):
    (tmp_path / "src").write_bytes(b"1")
    assert LOCAL.rename(str(tmp_path / "src"), str(tmp_path / "dst")) is True
    assert LOCAL.rename(str(tmp_path / "src"), str(tmp_path / "dst")) is False
    assert (tmp_path / "dst").read_bytes() == b"1"


def test_write_atomically_leaves_no_temporary(tmp_path):
    LOCAL.write_atomically(str(tmp_path / "_metadata"), b"1")
    LOCAL.write_atomically(str(tmp_path / "_metadata"), b"2")
    assert os.listdir(tmp_path) == ["_metadata"]
    assert LOCAL.read_bytes(str(tmp_path / "_metadata")) == b"2"


def test_status_listing_and_removal(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"abc")
    st = LOCAL.status(str(tmp_path / "d" / "f"))
    assert (st.name, st.is_dir, st.size) == ("f", False, 3) and st.mtime_ms > 0
    assert LOCAL.status(str(tmp_path / "nope")) is None
    assert [e.name for e in LOCAL.listdir(str(tmp_path))] == ["d"]
    with pytest.raises(FileNotFoundError):
        LOCAL.listdir(str(tmp_path / "nope"))
    assert LOCAL.local_copy(str(tmp_path / "d" / "f")) == (str(tmp_path / "d" / "f"), False)
    assert LOCAL.remove(str(tmp_path / "d" / "f")) and not LOCAL.remove(str(tmp_path / "d" / "f"))
    LOCAL.rmtree(str(tmp_path / "d"))
    LOCAL.rmtree(str(tmp_path / "d"))
    assert not LOCAL.exists(str(tmp_path / "d"))


@pytest.mark.parametrize("pattern", ["*/*.csv", "**/*.json", "in/202[6]/?.csv", "in/*",
                                     "**", "in/2027/c.csv", "in/none/*.csv"])
def test_generic_glob_matches_the_standard_library(tmp_path, pattern):
    for p in ("in/2026/a.csv", "in/2026/b.csv", "in/2027/c.csv", "in/2027/d.json", "x.csv"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"1")
    full = f"{tmp_path}/{pattern}"
    expected = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
    generic = FileSystem.glob(LOCAL, full)  # the walk-based one HDFS uses
    assert [e.path for e in generic if not e.is_dir] == expected
    assert [e.path for e in LOCAL.glob(full) if not e.is_dir] == expected


def test_walk_prunes_and_skips_a_missing_root(tmp_path):
    for p in ("a/x", "a/_skip/y", "b/z"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"1")
    seen = []
    for _folder, dirs, files in FileSystem.walk(LOCAL, str(tmp_path)):
        dirs[:] = [d for d in dirs if not d.name.startswith("_")]
        seen += [f.name for f in files]
    assert sorted(seen) == ["x", "z"]
    assert list(FileSystem.walk(LOCAL, str(tmp_path / "missing"))) == []


def test_urls_and_paths():
    assert is_url("hdfs://nn:9870/x") and not is_url("/tmp/x") and not is_url("C:x")
    assert normpath("hdfs://nn:9870/lake/") == "hdfs://nn:9870/lake"
    assert normpath("hdfs://nn:9870/") == "hdfs://nn:9870/"
    assert normpath("rel/dir") == os.path.abspath("rel/dir")
    assert url_from_abspath(os.path.abspath("hdfs://nn:9870/state/x")) == "hdfs://nn:9870/state/x"
    assert url_from_abspath(os.path.abspath("webhdfs://nn/a")) == "webhdfs://nn/a"
    assert url_from_abspath("/data/hdfs/x") == "/data/hdfs/x"
    assert url_from_abspath("hdfs://nn:9870/y") == "hdfs://nn:9870/y"


def test_filesystem_resolution():
    assert filesystem("/tmp/x") is LOCAL and LOCAL.is_local
    a = filesystem("hdfs://alice@nn:9870/a")
    assert a is filesystem("hdfs://alice@nn:9870/b/c")  # one per namenode and user
    assert a is not filesystem("hdfs://bob@nn:9870/a")
    assert not a.is_local and a.http_url == "http://nn:9870" and a.user == "alice"
    assert a.hdfs_path("hdfs://alice@nn:9870/b/c") == "/b/c"
    assert filesystem("swebhdfs://nn/x").http_url == "https://nn:9870"
    with pytest.raises(ValueError, match="unsupported URL scheme 's3'"):
        filesystem("s3://bucket/x")


def test_user_from_the_environment(monkeypatch):
    monkeypatch.setenv("HADOOP_USER_NAME", "etl")
    assert filesystem("hdfs://nn2:9870/x").user == "etl"
