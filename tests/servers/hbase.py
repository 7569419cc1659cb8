"""A throwaway HBase: Apache HBase 2.6 standalone (HMaster, a region server and ZooKeeper in
one JVM, over a local folder; the Hadoop 3 build from Maven Central, see
``tests/servers/maven/hbase/pom.xml``) and its Thrift (thrift1) server in a second JVM, each
on free ports.

Two JVMs so a test can kill -9 HBase alone (master, region server and ZooKeeper at once) and
start it again on the same ports and folder (:meth:`ThrowawayHBase.restart_hbase`) while the
Thrift server stays up and reconnects, as a Thrift gateway does when its cluster restarts;
:meth:`ThrowawayHBase.restart` kills and restarts both.

The Thrift server runs as ``hbase thrift start`` does by default: thread pool, buffered
transport, binary protocol (what the hub's HBase sink and happybase speak by default).

Tuned for a small machine: serial GC, C1 only, small heaps, few handler threads, no web UIs.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from xml.sax.saxutils import escape

from tests.servers.common import free_port, kill_now, stop_servers, wait_until

_JVM = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k", "-XX:-UsePerfData",
        "-Djava.net.preferIPv4Stack=true", "-Dio.netty.tryReflectionSetAccessible=true",
        # what HBase's own scripts open on Java 11+ (its off-heap buffers and netty)
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        "--add-opens=java.base/java.lang=ALL-UNNAMED",
        "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
        "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
        "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED"]
_LOG4J = """\
log4j.rootLogger=WARN,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{HH:mm:ss,SSS} %p %c{1}: %m%n
log4j.logger.org.apache.hadoop.hbase.master.HMaster=INFO
log4j.logger.org.apache.hadoop.hbase.thrift=INFO
"""


def _site(props: dict[str, str]) -> str:
    body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                   for k, v in props.items())
    return f"<?xml version=\"1.0\"?>\n<configuration>\n{body}</configuration>\n"


class ThrowawayHBase:
    """Standalone HBase + Thrift server processes over ``self.dir`` (``root/``, ``zk/``,
    ``conf/``, logs).  All ports are fixed at construction, so restarts come back on the same
    ones, over the same data."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-hbase-")
        self.host = "127.0.0.1"
        self.port = free_port()  # Thrift
        self.zk_port, self.master_port, self.rs_port = free_port(), free_port(), free_port()
        self.hbase: subprocess.Popen | None = None
        self.thrift: subprocess.Popen | None = None
        self._classpath = self._thrift_classpath = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _configure(self) -> None:
        from tests.servers import maven

        conf = os.path.join(self.dir, "conf")
        os.makedirs(conf, exist_ok=True)
        props = {
            "hbase.cluster.distributed": "false",
            "hbase.rootdir": "file://" + os.path.join(self.dir, "root"),
            "hbase.tmp.dir": os.path.join(self.dir, "tmp"),
            "hbase.zookeeper.property.dataDir": os.path.join(self.dir, "zk"),
            "hbase.zookeeper.quorum": "127.0.0.1",
            "hbase.zookeeper.property.clientPort": str(self.zk_port),
            "hbase.master.port": str(self.master_port),
            "hbase.master.info.port": "-1",
            "hbase.regionserver.port": str(self.rs_port),
            "hbase.regionserver.info.port": "-1",
            "hbase.master.hostname": "127.0.0.1",
            "hbase.regionserver.hostname": "127.0.0.1",
            # a local file system has no hflush/hsync capability to check
            "hbase.unsafe.stream.capability.enforce": "false",
            "hbase.regionserver.handler.count": "6",
            "hbase.master.handler.count": "4",
            "hbase.master.wait.on.regionservers.mintostart": "1",
            "hbase.master.wait.on.regionservers.timeout": "500",
            "hbase.master.wait.on.regionservers.interval": "200",
            # the Thrift server's client: give up on a dead cluster within seconds, and come
            # back quickly once it restarted
            "zookeeper.session.timeout": "10000",
            "hbase.thrift.minWorkerThreads": "4",
        }
        with open(os.path.join(conf, "hbase-site.xml"), "w") as f:
            f.write(_site(props))
        # the Thrift server's own configuration: its HBase client gives up on a dead cluster
        # within seconds and answers with an IOError (the caller retries and says so),
        # rather than holding the call until HBase is back
        thrift_conf = os.path.join(self.dir, "thrift-conf")
        os.makedirs(thrift_conf, exist_ok=True)
        with open(os.path.join(thrift_conf, "hbase-site.xml"), "w") as f:
            f.write(_site({**props, "hbase.client.pause": "100",
                           "hbase.client.operation.timeout": "8000",
                           "hbase.rpc.timeout": "3000"}))
        for folder in (conf, thrift_conf):
            with open(os.path.join(folder, "log4j.properties"), "w") as f:
                f.write(_LOG4J)
        jars = maven.jars("hbase")
        self._classpath = f"{conf}:{jars}/*"
        self._thrift_classpath = f"{thrift_conf}:{jars}/*"

    def _java(self, heap: str, main: str, *args: str, log: str,
              classpath: str | None = None) -> subprocess.Popen:
        from tests.servers import maven

        with open(os.path.join(self.dir, log), "ab") as out:
            return subprocess.Popen(
                [maven.java(17), f"-Xmx{heap}", *_JVM, "-cp", classpath or self._classpath, main, *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def _serving(self) -> bool:
        """The Thrift server answers, and HBase behind it is done initializing: a table can
        be created, written and dropped."""
        import happybase

        conn = happybase.Connection(self.host, self.port, timeout=10000)
        try:
            if b"hub_probe" in conn.tables():
                conn.delete_table("hub_probe", disable=True)
            conn.create_table("hub_probe", {"cf": {}})
            conn.table("hub_probe").put(b"r", {b"cf:c": b"v"})
            conn.delete_table("hub_probe", disable=True)
            return True
        except Exception:  # noqa: BLE001 - not ready yet: wait_until asks again
            return False
        finally:
            conn.close()

    def _accepting(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1):
            return True

    def start_hbase(self) -> None:
        self.hbase = self._java("512m", "org.apache.hadoop.hbase.master.HMaster", "start",
                                log="hbase.log")

    def start_thrift(self) -> None:
        self.thrift = self._java("256m", "org.apache.hadoop.hbase.thrift.ThriftServer",
                                 "-p", str(self.port), "--infoport", "-1", "-threadpool",
                                 "start", log="thrift.log",
                                 classpath=self._thrift_classpath)
        wait_until(self._accepting, 90, "the HBase Thrift server", self.thrift,
                   os.path.join(self.dir, "thrift.log"))

    def wait_serving(self) -> None:
        wait_until(self._serving, 120, "HBase (tables listed through Thrift)", self.hbase,
                   os.path.join(self.dir, "hbase.log"))

    def kill_hbase(self) -> None:
        """kill -9 the HBase JVM (master, region server, ZooKeeper); folder and ports stay."""
        kill_now(self.hbase)
        self.hbase = None

    def restart_hbase(self) -> None:
        """kill -9 HBase and start it again on the same folder and ports; the Thrift server
        stays and reconnects."""
        self.kill_hbase()
        self.start_hbase()
        self.wait_serving()

    def restart(self) -> None:
        """kill -9 both JVMs and start them again over the same folder and ports."""
        kill_now(self.thrift)
        self.kill_hbase()
        self.start_hbase()
        self.start_thrift()
        self.wait_serving()

    def start(self):  # -> tests.servers.hbase_thrift.HBaseService
        from tests.servers.hbase_thrift import HBaseService

        self._configure()
        try:
            self.start_hbase()
            self.start_thrift()
            self.wait_serving()
        except BaseException:
            self.stop()  # no JVM left behind by a failed start
            raise
        return HBaseService(self.host, self.port, cluster=self)

    def stop(self) -> None:
        stop_servers([self.thrift, self.hbase], self.dir)
        self.thrift = self.hbase = None



def main() -> None:
    """``python -m tests.servers.hbase``: start one, print its address and the startup time,
    wait."""
    t0 = time.monotonic()
    cluster = ThrowawayHBase()
    server = cluster.start()
    print(f"HBase up in {time.monotonic() - t0:.1f}s: Thrift {server.host}:{server.port}, "
          f"folder {cluster.dir}", flush=True)
    try:
        signal.pause()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
