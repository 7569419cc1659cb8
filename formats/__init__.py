"""Encoders and decoders of change events, grouped by family.

* :mod:`formats.file`: file formats (parquet, csv, jsonl) and files of messages (one message
  per line, Avro container files), with the reading helpers they share.
* :mod:`formats.message`: message formats (json, debezium-json, canal-json, maxwell-json, raw,
  avro with the schema registry) and the envelope decoding loop and JSON values they share.
* :mod:`formats.codec`: value codecs shared by both families (text encodings, Avro schemas and
  encoding, Debezium's semantic types).
* :mod:`formats.base`: what both families build on (bad-record handler, the message codec
  interface); :mod:`formats.registry`: ``format = "..."`` plus options -> a format object.
* :mod:`formats.clients`: the one translation of a client library's errors into transient and
  terminal hub errors, for clients a source and a sink share (PyMySQL, confluent-kafka).

Imports point one way: registry -> message -> file -> codec, base -> runtime; clients ->
runtime only.
"""
