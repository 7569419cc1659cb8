"""The print sink: every change event as one line on stdout or stderr, like Flink's print
sink.  For debugging; not transactional (lines appear as batches arrive)."""
