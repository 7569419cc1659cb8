"""The Ray executor: the same job, its subtasks as Ray actors over a cluster's nodes.

``ray`` is an extra (``pip install .[ray]``); importing :mod:`runtime.executor.ray.executor`
without it raises one line naming the extra.
"""
