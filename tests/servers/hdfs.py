"""A throwaway HDFS: Apache Hadoop's NameNode and DataNode (3.4, from Maven Central's
``hadoop-client-minicluster``, see ``tests/servers/maven/hdfs/pom.xml``), each in a JVM of its
own, on free ports, over a temporary folder, with WebHDFS and RPC on.

Two processes rather than MiniDFSCluster's one JVM, so a test can kill -9 the DataNode alone
and start it again on the same ports and folder (:meth:`ThrowawayHdfs.restart_datanode`), or
kill and restart both, keeping their folder (:meth:`ThrowawayHdfs.restart`).

What a real cluster does that our WebHDFS test server (tests/servers/webhdfs.py) did not:
leases (one writer per file until it closes or the lease expires), the redirect to the
DataNode's own HTTP address, permissions checked for the ``user.name`` of each request (the
NameNode's superuser is the login that started it, so the tests' URLs name another user,
``hdfs://hub@...``; ``/`` is opened to every user, 1777, as an administrator would create home
folders), safe mode while blocks are reported after a restart.

Tuned for a small machine: serial GC, C1 only, small heaps, few handler threads, heartbeats
every second (a restarted DataNode is back within seconds), no safe-mode extension.
"""
from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from xml.sax.saxutils import escape

from tests.servers.common import free_port, kill_now, stop_servers, wait_until

_JVM = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
        "-XX:-UsePerfData", "-Djava.net.preferIPv4Stack=true"]
_LOG4J = """\
log4j.rootLogger=WARN,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{HH:mm:ss,SSS} %p %c{1}: %m%n
log4j.logger.org.apache.hadoop.hdfs.StateChange=INFO
log4j.logger.org.apache.hadoop.hdfs.server.namenode.NameNode=INFO
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode=INFO
"""


def _site(props: dict[str, str]) -> str:
    body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                   for k, v in props.items())
    return f"<?xml version=\"1.0\"?>\n<configuration>\n{body}</configuration>\n"


class ThrowawayHdfs:
    """NameNode + DataNode processes over ``self.dir`` (``name/``, ``data/``, ``conf/``, logs).

    :meth:`start` formats the NameNode's folder on first start only, so :meth:`restart` keeps
    every file.  All ports are fixed at construction, so restarts come back on the same ones.
    """

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-hdfs-")
        self.rpc_port, self.http_port = free_port(), free_port()
        self.dn_ports = {"dfs.datanode.address": free_port(),
                         "dfs.datanode.http.address": free_port(),
                         "dfs.datanode.ipc.address": free_port()}
        self.namenode: subprocess.Popen | None = None
        self.datanode: subprocess.Popen | None = None
        self._classpath = ""
        self._formatted = False

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def rpc_url(self) -> str:
        return f"hdfs://127.0.0.1:{self.rpc_port}"

    # -- processes ----------------------------------------------------------------------------
    def _configure(self) -> None:
        from tests.servers import maven

        conf = os.path.join(self.dir, "conf")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "core-site.xml"), "w") as f:
            f.write(_site({"fs.defaultFS": self.rpc_url,
                           "hadoop.tmp.dir": os.path.join(self.dir, "tmp"),
                           "hadoop.http.authentication.simple.anonymous.allowed": "true"}))
        props = {
            "dfs.namenode.name.dir": os.path.join(self.dir, "name"),
            "dfs.datanode.data.dir": os.path.join(self.dir, "data"),
            "dfs.namenode.rpc-address": f"127.0.0.1:{self.rpc_port}",
            "dfs.namenode.http-address": f"127.0.0.1:{self.http_port}",
            **{k: f"127.0.0.1:{v}" for k, v in self.dn_ports.items()},
            # the redirect to the DataNode names this host, not the machine's name
            "dfs.datanode.hostname": "127.0.0.1",
            "dfs.replication": "1",
            "dfs.namenode.safemode.extension": "0",
            "dfs.namenode.handler.count": "4",
            "dfs.namenode.service.handler.count": "2",
            "dfs.datanode.handler.count": "3",
            "dfs.heartbeat.interval": "1",
            "dfs.namenode.heartbeat.recheck-interval": "5000",
            "dfs.blockreport.initialDelay": "0",
            "dfs.datanode.directoryscan.interval": "-1",
            # one DataNode: a pipeline can't swap it for another, so never try
            "dfs.client.block.write.replace-datanode-on-failure.enable": "false",
            "dfs.namenode.fs-limits.min-block-size": "1024",
        }
        with open(os.path.join(conf, "hdfs-site.xml"), "w") as f:
            f.write(_site(props))
        with open(os.path.join(conf, "log4j.properties"), "w") as f:
            f.write(_LOG4J)
        self._classpath = f"{conf}:{maven.jars('hdfs')}/*"

    def _java(self, heap: str, main: str, *args: str, log: str) -> subprocess.Popen:
        from tests.servers import maven

        with open(os.path.join(self.dir, log), "ab") as out:
            return subprocess.Popen(
                [maven.java(17), f"-Xmx{heap}", *_JVM, "-cp", self._classpath, main, *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                env={**os.environ, "HADOOP_USER_NAME": getpass.getuser()})

    def _get(self, path: str, timeout: float = 2) -> dict:
        with urllib.request.urlopen(f"{self.http_url}{path}", timeout=timeout) as r:
            return json.load(r)

    def _live_datanodes(self) -> int:
        beans = self._get("/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState")["beans"]
        return int(beans[0]["NumLiveDataNodes"])

    def _writable(self) -> bool:
        """This DataNode process runs registered with the NameNode, and the NameNode is out of
        safe mode (after its own restart: the blocks were reported): a write would succeed.  (Asked of the DataNode itself, since after a
        kill -9 the NameNode still counts the dead one as live for a while.)"""
        port = self.dn_ports["dfs.datanode.http.address"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jmx?qry=Hadoop:service=DataNode,"
                                    f"name=DataNodeInfo", timeout=2) as r:
            actors = json.loads(json.load(r)["beans"][0]["BPServiceActorInfo"])
        if not actors or any(a.get("ActorState") != "RUNNING" for a in actors):
            return False
        beans = self._get("/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo")["beans"]
        return not beans[0].get("Safemode") and self._live_datanodes() >= 1

    def start_namenode(self, datanode_too: bool = False) -> None:
        """Format on first start, start the NameNode (and, with ``datanode_too``, the DataNode
        right after it: its JVM starts while the NameNode loads, and it retries until the
        NameNode answers) and wait until WebHDFS answers."""
        if not self._formatted and not os.path.exists(os.path.join(self.dir, "name")):
            fmt = self._java("256m", "org.apache.hadoop.hdfs.server.namenode.NameNode",
                             "-format", "-nonInteractive", "-force", log="format.log")
            if fmt.wait(120) != 0:
                raise RuntimeError(f"formatting the NameNode failed, see "
                                   f"{self.dir}/format.log")
        self._formatted = True
        self.namenode = self._java("384m", "org.apache.hadoop.hdfs.server.namenode.NameNode",
                                   log="namenode.log")
        if datanode_too:
            self.start_datanode(wait=False)
        wait_until(lambda: self._get("/webhdfs/v1/?op=GETFILESTATUS") is not None, 90,
                   "the HDFS NameNode", self.namenode, os.path.join(self.dir, "namenode.log"))

    def start_datanode(self, wait: bool = True) -> None:
        self.datanode = self._java("256m", "org.apache.hadoop.hdfs.server.datanode.DataNode",
                                   log="datanode.log")
        if wait:
            self.wait_datanode()

    def wait_datanode(self) -> None:
        wait_until(self._writable, 90, "the HDFS DataNode (registered, safe mode off)",
                   self.datanode, os.path.join(self.dir, "datanode.log"))

    def kill_datanode(self) -> None:
        """kill -9 the DataNode (its folder and ports stay, for :meth:`start_datanode`)."""
        kill_now(self.datanode)
        self.datanode = None

    def restart_datanode(self) -> None:
        self.kill_datanode()
        self.start_datanode()

    def kill(self) -> None:
        """kill -9 both processes, keeping their folder."""
        kill_now(self.datanode)
        kill_now(self.namenode)
        self.datanode = self.namenode = None

    def restart(self) -> None:
        """kill -9 both and start them again over the same folder and ports."""
        self.kill()
        self.start_namenode(datanode_too=True)
        self.wait_datanode()

    def start(self):  # -> tests.servers.webhdfs.WebHdfs
        from tests.servers.webhdfs import WebHdfs

        self._configure()
        try:
            self.start_namenode(datanode_too=True)
            self.wait_datanode()
        except BaseException:
            self.stop()  # no JVM left behind by a failed start
            raise
        # every user may create folders at the top, as in a cluster with home folders
        req = urllib.request.Request(
            f"{self.http_url}/webhdfs/v1/?op=SETPERMISSION&permission=1777"
            f"&user.name={getpass.getuser()}", method="PUT")
        urllib.request.urlopen(req, timeout=30).close()
        return WebHdfs(self.http_url, rpc_url=self.rpc_url, cluster=self, user="hub")

    def stop(self) -> None:
        stop_servers([self.datanode, self.namenode], self.dir)
        self.datanode = self.namenode = None



def main() -> None:
    """``python -m tests.servers.hdfs``: start one, print its URLs and the startup time, wait."""
    t0 = time.monotonic()
    cluster = ThrowawayHdfs()
    server = cluster.start()
    print(f"HDFS up in {time.monotonic() - t0:.1f}s: WebHDFS {server.http_url}, "
          f"RPC {server.rpc_url}, folder {cluster.dir}", flush=True)
    try:
        signal.pause()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
