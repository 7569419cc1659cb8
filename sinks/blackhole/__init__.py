"""The blackhole sink: discards everything (for benchmarks of sources and transforms)."""
