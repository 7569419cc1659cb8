"""``type = "hdfs"``: the files sink (:mod:`sinks.files`) on HDFS, through WebHDFS.

The same part-file lifecycle (hidden in-progress file, closed into pending at the checkpoint,
renamed visible at commit: a rename on the namenode is atomic) and the same options; ``path``
must be an ``hdfs://namenode:9870/dir`` URL.  Needs the ``hdfs`` extra.
"""
