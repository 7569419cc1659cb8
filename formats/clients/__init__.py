"""The one translation of a client library's errors into transient and terminal hub errors,
for each client a source and a sink share (sources and sinks may import ``formats`` but not
each other): :mod:`formats.clients.mysql` (PyMySQL: the MySQL source, the JDBC sink's MySQL
dialect), :mod:`formats.clients.kafka` (confluent-kafka: the Kafka source and sink).

A connector keeps its own wording where it adds context (which table, which checkpoint); the
decision whether an error is worth retrying is made here only.  Importing these modules
needs no client library."""
