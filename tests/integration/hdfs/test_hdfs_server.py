"""What a real HDFS does that the hub meets and our WebHDFS test server did not: the redirect
to the DataNode's own address, permissions of the URL's user, leases (one writer per file),
RPC beside WebHDFS; and the throwaway cluster's restart keeping its files (for fault tests)."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import requests

from runtime.errors import TerminalError, TransientError
from runtime.fs import filesystem, os_error
from tests.servers.common import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]


@pytest.fixture
def cluster(webhdfs_server):
    if webhdfs_server.cluster is None:
        pytest.skip("HUB_TEST_WEBHDFS names an HDFS these tests must not restart")
    return webhdfs_server.cluster


def test_create_redirects_to_the_datanode_and_rpc_listens(webhdfs_server, hdfs_dir):
    path = urlsplit(hdfs_dir).path
    r = requests.put(f"{webhdfs_server.http_url}/webhdfs/v1{path}/f?op=CREATE&user.name=hub",
                     allow_redirects=False, timeout=30)
    assert r.status_code == 307
    assert urlsplit(r.headers["Location"]).netloc != urlsplit(webhdfs_server.http_url).netloc
    if webhdfs_server.rpc_url:
        u = urlsplit(webhdfs_server.rpc_url)
        socket.create_connection((u.hostname, u.port), timeout=5).close()


def test_another_users_private_folder_is_a_terminal_error(webhdfs_server, hdfs_dir):
    fs = filesystem(hdfs_dir)
    fs.makedirs(f"{hdfs_dir}/private")
    webhdfs_server.client().set_permission(urlsplit(hdfs_dir).path + "/private", "700")
    other = hdfs_dir.replace("://hub@", "://intruder@", 1)
    if other == hdfs_dir:
        pytest.skip("the HDFS of HUB_TEST_WEBHDFS runs without permissions")
    with pytest.raises(PermissionError, match="user=intruder") as e:
        filesystem(other).write_bytes(f"{other}/private/x", b"1")
    err = os_error("writing", e.value)
    assert isinstance(err, TerminalError) and "/private" in str(err)


def test_a_second_writer_of_an_open_file_is_refused_by_its_lease(hdfs_dir):
    fs = filesystem(hdfs_dir)
    first = fs.create(f"{hdfs_dir}/f")
    first.write(b"x" * (2 << 20))  # a chunk on its way: the file is open, its lease held
    # the upload runs on a thread of its own: on a busy machine the second writer could reach
    # the NameNode first and be the one holding the lease
    wait_until(lambda: fs.exists(f"{hdfs_dir}/f"), 30, "the first writer's file")
    second = fs.create(f"{hdfs_dir}/f")
    second.write(b"y")
    with pytest.raises(OSError, match="lease is currently owned by") as e:
        second.close()
    # retried: the lease ends when its writer closes the file, or dies and the lease expires
    assert isinstance(os_error("writing", e.value), TransientError)
    first.close()
    assert fs.read_bytes(f"{hdfs_dir}/f") == b"x" * (2 << 20)


def test_restart_keeps_the_files(cluster, hdfs_dir):
    fs = filesystem(hdfs_dir)
    fs.write_bytes(f"{hdfs_dir}/kept", b"still here")
    cluster.restart()  # kill -9 NameNode and DataNode, start both on the same folder
    assert fs.read_bytes(f"{hdfs_dir}/kept") == b"still here"
