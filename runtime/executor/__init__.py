"""Executors run a job's subtasks.  The local executor runs each subtask as a thread of one
process; everything subtasks and coordinator exchange is plain data (see ``messages``) so that
a distributed executor can be added without touching connectors."""
