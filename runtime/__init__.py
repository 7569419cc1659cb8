"""The engine and the connector SPI.  Imports nothing of ours.

Arrow's default allocator (mimalloc) keeps freed pages around before giving them back to the
OS; with batches allocated and freed continuously that shows as resident memory Arrow no longer
uses.  A 10 ms purge delay keeps RSS close to what is in use at little cost (bench/
pipeline_bench.py, 5M rows into Parquet at parallelism 2: peak RSS 286 -> 220 MB; 0 ms gives
200 MB but costs a third of the throughput).  Set before pyarrow is first imported; a user's
own setting wins.
"""
import os as _os

_os.environ.setdefault("MIMALLOC_PURGE_DELAY", "10")

# numpy's OpenBLAS starts a thread per core that spins for a while after it starts and after
# each call, taking a core from the pipeline's own threads; the hub does no linear algebra
# (bench/hdfs_bench.py, datagen -> files Parquet at 1M rows: run 0.61 -> 0.46 s, CPU
# 1.08 -> 0.89 s).  Set before numpy is first imported; a user's own setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
