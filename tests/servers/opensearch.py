"""A throwaway OpenSearch 2.19 single node (from Maven Central through
:mod:`tests.servers.maven`, see ``tests/servers/maven/opensearch/pom.xml``) on free ports with
its own data folder.

Maven Central serves OpenSearch's server jar and some of its modules, not the distribution, so
:func:`home` lays the resolved jars out as an OpenSearch home beside them, once: the server's
jars in ``lib/``, and in ``modules/`` the two modules the tests need, each a folder with its
jars, a ``plugin-descriptor.properties`` and a ``plugin-security.policy`` written here (as the
distribution's build writes them): ``transport-netty4`` (the HTTP and transport layer: without
it a node has no HTTP) and ``mapper-extras`` (``scaled_float``, the sink's mapping of DECIMAL
columns).  The node runs as ``org.opensearch.bootstrap.OpenSearch`` with its settings as
``-E`` options: single-node discovery, loopback only (so bootstrap checks only warn), no
security plugin (not included).

Tuned for a 2-core machine: a 512 MB heap, the serial collector, two processors.  A start
takes 3 to 13 s on the shared 2-core machine (13 s cold, right after the jars were laid out),
a restart after kill -9 5 to 6 s; the JIT's first tier only (as the Kafka broker runs) made no
measurable difference, so the node keeps every tier for its indexing.
"""
from __future__ import annotations

import fcntl
import glob
import json
import os
import subprocess
import tempfile
import time
import urllib.request

from tests.servers.common import RestartableServer, free_port, stop_server, wait_until

VERSION = "2.19.6"

#: module folder -> (jar name prefixes, plugin descriptor's classname, description, policy)
MODULES = {
    "transport-netty4": (
        ("transport-netty4-client-", "netty-"), "org.opensearch.transport.Netty4Plugin",
        "Netty 4 based transport implementation",
        # the distribution's module policy: netty's socket handling and thread names
        'grant codeBase "${codebase.netty-common}" {\n'
        '  permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";\n'
        '  permission java.net.SocketPermission "*", "accept,connect";\n'
        '  permission java.lang.RuntimePermission "*", "setContextClassLoader";\n'
        '  permission java.lang.RuntimePermission "getClassLoader";\n'
        '};\n'
        'grant codeBase "${codebase.netty-transport}" {\n'
        '  permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";\n'
        '};\n'),
    "mapper-extras": (
        ("mapper-extras-client-",), "org.opensearch.index.mapper.MapperExtrasPlugin",
        "Adds advanced field mappers", None),
}

_LOG4J = """\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
"""

#: JVM options: the distribution's required ones (netty without Unsafe tricks, no log4j
#: lookups) and a small heap with the serial collector (a 2-core machine shared with the hub's
#: processes and other servers: parallel GC threads only compete with them).
JVM = ["-Xms512m", "-Xmx512m", "-XX:+UseSerialGC", "-Xss1m", "-XX:-UsePerfData",
       "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8", "-Djna.nosys=true",
       # JNA's classes without its native library (neither unpacked from its jar nor the
       # system's): the node then skips its native checks, among them the refusal to run as
       # root (the tests' containers run as root); memory locking and the system call
       # filter, the rest of what JNA does, are not for a throwaway node anyway
       "-Djna.nounpack=true",
       "-Dio.netty.noUnsafe=true", "-Dio.netty.noKeySetOptimization=true",
       "-Dio.netty.recycler.maxCapacityPerThread=0", "-Dlog4j.shutdownHookEnabled=false",
       "-Dlog4j2.disable.jmx=true", "-Dlog4j2.formatMsgNoLookups=true",
       "-Djava.locale.providers=SPI,COMPAT", "-XX:+ShowCodeDetailsInExceptionMessages"]


def home() -> str:
    """The OpenSearch home made of the cached jars (laid out on first use, under a lock)."""
    from tests.servers import maven

    jars = maven.jars("opensearch")
    root = os.path.join(jars, "home")
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return root
    with open(os.path.join(jars, "home.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            return root
        taken: set[str] = set()
        for name, (prefixes, classname, description, policy) in MODULES.items():
            folder = os.path.join(root, "modules", name)
            os.makedirs(folder, exist_ok=True)
            for jar in sorted(glob.glob(os.path.join(jars, "*.jar"))):
                if os.path.basename(jar).startswith(prefixes):
                    _link(jar, os.path.join(folder, os.path.basename(jar)))
                    taken.add(jar)
            with open(os.path.join(folder, "plugin-descriptor.properties"), "w") as f:
                f.write(f"name={name}\ndescription={description}\nversion={VERSION}\n"
                        f"opensearch.version={VERSION}\njava.version=11\n"
                        f"classname={classname}\nextended.plugins=\n"
                        f"has.native.controller=false\n")
            if policy:
                with open(os.path.join(folder, "plugin-security.policy"), "w") as f:
                    f.write(policy)
        lib = os.path.join(root, "lib")
        os.makedirs(lib, exist_ok=True)
        for jar in sorted(glob.glob(os.path.join(jars, "*.jar"))):
            if jar not in taken:
                _link(jar, os.path.join(lib, os.path.basename(jar)))
        os.makedirs(os.path.join(root, "plugins"), exist_ok=True)
        with open(done, "w"):
            pass
    return root


def _link(src: str, dst: str) -> None:
    if not os.path.exists(dst):
        os.link(src, dst)


class ThrowawayOpenSearch(RestartableServer):
    """``org.opensearch.bootstrap.OpenSearch`` of its own: ``start`` starts it, ``kill`` ends
    it with SIGKILL (a crash: no flush, the translog replayed at the next start), ``restart``
    starts it again on the same ports and data folder, ``stop`` ends it and removes its
    folder."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-opensearch-")
        self.http_port, self.transport_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(self.dir, "opensearch.log")
        #: seconds from the process start to the cluster answering green/yellow (last start)
        self.started_in = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "ThrowawayOpenSearch":
        conf = os.path.join(self.dir, "config")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "opensearch.yml"), "w"):
            pass
        with open(os.path.join(conf, "log4j2.properties"), "w") as f:
            f.write(_LOG4J)
        self._launch()
        return self

    def _command(self) -> list[str]:
        from tests.servers import maven

        h = home()
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        settings = {
            "cluster.name": "hub-tests", "node.name": "hub-node",
            "discovery.type": "single-node", "network.host": "127.0.0.1",
            "http.port": str(self.http_port), "transport.port": str(self.transport_port),
            "path.data": os.path.join(self.dir, "data"),
            "path.logs": os.path.join(self.dir, "logs"),
            # two cores shared with the rest of the test run
            "node.processors": "2",
            # no disk watermarks: a full test machine must not turn indexes read-only
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.auto_create_index": "true",
        }
        return [maven.java(17), *JVM, f"-Djava.io.tmpdir={tmp}",
                f"-Dopensearch.path.home={h}",
                f"-Dopensearch.path.conf={os.path.join(self.dir, 'config')}",
                "-Dopensearch.distribution.type=tar", "-Dopensearch.bundled_jdk=false",
                "-cp", os.path.join(h, "lib", "*"), "org.opensearch.bootstrap.OpenSearch",
                *(f"-E{k}={v}" for k, v in settings.items())]

    def _launch(self) -> None:
        started = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self._command(), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self._healthy, 120, "OpenSearch", self.proc, self.log)
        self.started_in = time.monotonic() - started

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/_cluster/health", timeout=2) as r:
            return json.load(r)["status"] in ("green", "yellow")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_server(proc, self.dir)
