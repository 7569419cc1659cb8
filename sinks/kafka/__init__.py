"""The Kafka sink: change events as records, exactly once with transactions (see sink.py)."""
