"""Message formats (json, debezium-json, canal-json, maxwell-json, raw, avro); see
:mod:`formats.message.base`."""
