"""The allocator settings the runtime makes at import (runtime/__init__.py): a batch's freed
numpy buffers are reused by the next batch, not given back to the OS and faulted in again."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

# 200 arrays of 1 MiB, each written and freed, as a pipeline's batches are; prints the minor
# page faults that took and the purge delay Arrow's allocator was given
_CHURN = """
import resource
import runtime  # noqa: F401
import numpy as np
import os
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    a = np.ones(1 << 17, dtype=np.int64)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
      os.environ["MIMALLOC_PURGE_DELAY"])
"""


def _churn(**env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MALLOC_", "MIMALLOC_"))}
    out = subprocess.run([sys.executable, "-c", _CHURN], cwd=ROOT, env={**clean, **env},
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), out[1]


def test_freed_batch_buffers_are_reused_without_page_faults():
    faults, purge = _churn()
    # 200 MiB written: a fresh mapping per array would fault 51,200 pages
    assert faults < 5_000, faults
    assert purge == "100"


def test_a_users_own_allocator_settings_win():
    # glibc's own default threshold (128 KiB): every array mapped and unmapped again
    faults, purge = _churn(MALLOC_MMAP_THRESHOLD_=str(128 * 1024), MIMALLOC_PURGE_DELAY="10")
    assert faults > 40_000, faults
    assert purge == "10"
