"""Executors run a job's subtasks.  ``base`` is the interface and its contract, ``local`` runs
each subtask as a thread of one process, ``restart`` restarts a job from its latest checkpoint
after transient errors; everything subtasks and coordinator exchange is plain data (see
``messages``) so that a distributed executor can be added without touching connectors."""
