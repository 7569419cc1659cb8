"""Java servers from Maven Central for the tests (Apache Kafka, and whatever else a suite
needs): each has a small pom in ``tests/servers/maven/<name>/pom.xml``; the jars of its
dependencies are copied once, by ``mvn dependency:copy-dependencies``, into a cache folder that
survives between runs (``HUB_MAVEN_CACHE``, default ``~/.cache/cdc-hub/maven``), one
folder per pom content, so editing a pom resolves anew.  A first run downloads (Maven's own
repository, ``~/.m2``, is reused); later runs start at once.
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def cache_root() -> str:
    return os.environ.get("HUB_MAVEN_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "cdc-hub", "maven")


def jars(name: str) -> str:
    """The folder holding the jars of ``tests/servers/maven/<name>/pom.xml``'s dependencies
    (resolved now if not cached yet); ``<folder>/*`` is a Java class path.  Safe to call from
    several processes at once (a file lock)."""
    pom = os.path.join(HERE, "maven", name, "pom.xml")
    with open(pom, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    root = cache_root()
    os.makedirs(root, exist_ok=True)
    target = os.path.join(root, f"{name}-{digest}")
    done = os.path.join(target, ".complete")
    if os.path.exists(done):
        return target
    with open(os.path.join(root, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            return target
        tmp = target + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("mvn is not installed: the tests resolve Java servers from Maven "
                               "Central with it (Debian package maven)")
        proc = subprocess.run(
            [mvn, "-q", "-B", "-f", pom, "dependency:copy-dependencies",
             f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"],
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"resolving {pom} with Maven failed:\n"
                               f"{(proc.stdout + proc.stderr)[-3000:]}")
        os.rename(tmp, target)
        with open(done, "w"):
            pass
    return target


def java(version: int = 17) -> str:
    """The ``java`` binary of a JDK of at least ``version`` (17 is the machine's default; a
    newer one lies beside it in /usr/lib/jvm for artifacts that need it)."""
    if version <= 17:
        home = os.environ.get("JAVA_HOME")
        if home and os.path.exists(os.path.join(home, "bin", "java")):
            return os.path.join(home, "bin", "java")
        found = shutil.which("java")
        if found:
            return found
    for home in sorted(glob.glob("/usr/lib/jvm/*"), reverse=True):
        name = os.path.basename(home)
        digits = "".join(ch if ch.isdigit() else " " for ch in name).split()
        if digits and int(digits[0]) >= version and os.path.exists(f"{home}/bin/java"):
            return f"{home}/bin/java"
    raise RuntimeError(f"no Java {version} or newer is installed (looked in JAVA_HOME, PATH "
                       f"and /usr/lib/jvm)")
