"""The hub caps glibc's malloc arenas at start (peak memory of multi-threaded commits)."""
import os
import subprocess
import sys

import pytest

from hub.memory import limit_malloc_arenas

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")


def _arenas_after(env: dict) -> int:
    """Arenas in use after 8 threads allocated at once, in a fresh process."""
    code = """
import ctypes, threading, sys
from hub.memory import limit_malloc_arenas
if sys.argv[1] == "cap":
    limit_malloc_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    for _ in range(2000):
        libc.free(ctypes.c_void_p(libc.malloc(200000)))
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
import os, tempfile
libc.fopen.restype = ctypes.c_void_p
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(fp))
libc.fclose(ctypes.c_void_p(fp))
print(open(path).read().count("<heap nr="))
"""
    return {mode: int(subprocess.run([sys.executable, "-c", code, mode], env=env, check=True,
                                     capture_output=True, text=True).stdout)
            for mode in ("cap", "none")}


def test_arenas_are_capped_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    counts = _arenas_after(env)
    assert counts["cap"] <= 2 < counts["none"]


def test_the_users_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
