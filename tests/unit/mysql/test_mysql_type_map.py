"""The one MySQL type map (formats.mysqltypes): every MySQL type name, as the formats read it
from a type text and as the source reads it from information_schema, gives the same logical
type."""
from __future__ import annotations

import pytest

from formats.mysqltypes import TYPE_NAMES, from_mysql, logical_type
from runtime.types import T
from sources.mysql.types import NativeColumn

# (type text, DATA_TYPE as information_schema gives it (None: a type text only), attributes of
# the column as information_schema gives them, expected logical type)
CASES = [
    ("tinyint(4)", "tinyint", {}, "TINYINT"),
    ("tinyint(3) unsigned", "tinyint", {}, "SMALLINT"),
    ("smallint(6)", "smallint", {}, "SMALLINT"),
    ("smallint(5) unsigned", "smallint", {}, "INT"),
    ("mediumint(9)", "mediumint", {}, "INT"),
    ("mediumint(8) unsigned", "mediumint", {}, "INT"),
    ("int(11)", "int", {}, "INT"),
    ("int(10) unsigned zerofill", "int", {}, "BIGINT"),
    ("integer", "integer", {}, "INT"),
    ("integer unsigned", "integer", {}, "BIGINT"),
    ("bigint(20)", "bigint", {}, "BIGINT"),
    ("bigint(20) unsigned", "bigint", {}, "DECIMAL(20,0)"),
    ("decimal(12,2)", "decimal", {"precision": 12, "scale": 2}, "DECIMAL(12,2)"),
    ("decimal", "decimal", {}, "DECIMAL(10,0)"),
    ("numeric(5,1)", "numeric", {"precision": 5, "scale": 1}, "DECIMAL(5,1)"),
    ("dec(7,3)", None, {}, "DECIMAL(7,3)"),
    ("fixed(4,0)", None, {}, "DECIMAL(4,0)"),
    ("float", "float", {}, "FLOAT"),
    ("double", "double", {}, "DOUBLE"),
    ("double precision", None, {}, "DOUBLE"),
    ("real", "real", {}, "DOUBLE"),
    ("bit(1)", "bit", {"precision": 1}, "BOOLEAN"),
    ("bit(9)", "bit", {"precision": 9}, "BYTES"),
    ("bool", None, {}, "BOOLEAN"),
    ("boolean", None, {}, "BOOLEAN"),
    ("year(4)", "year", {}, "INT"),
    ("date", "date", {}, "DATE"),
    ("time(3)", "time", {"fsp": 3}, "TIME(3)"),
    ("time", "time", {}, "TIME(0)"),
    ("datetime(6)", "datetime", {"fsp": 6}, "TIMESTAMP(6)"),
    ("datetime", "datetime", {}, "TIMESTAMP(0)"),
    ("timestamp(3)", "timestamp", {"fsp": 3}, "TIMESTAMP_LTZ(3)"),
    ("timestamp", "timestamp", {}, "TIMESTAMP_LTZ(0)"),
    ("char(5)", "char", {"length": 5}, "CHAR(5)"),
    ("varchar(20)", "varchar", {"length": 20}, "VARCHAR(20)"),
    ("binary(4)", "binary", {"length": 4}, "BINARY(4)"),
    ("varbinary(8)", "varbinary", {"length": 8}, "VARBINARY(8)"),
    ("tinytext", "tinytext", {}, "STRING"),
    ("text", "text", {}, "STRING"),
    ("mediumtext", "mediumtext", {}, "STRING"),
    ("longtext", "longtext", {}, "STRING"),
    ("tinyblob", "tinyblob", {}, "BYTES"),
    ("blob", "blob", {}, "BYTES"),
    ("mediumblob", "mediumblob", {}, "BYTES"),
    ("longblob", "longblob", {}, "BYTES"),
    ("enum('a','b')", "enum", {}, "STRING"),
    ("set('a','b')", "set", {}, "ARRAY<STRING>"),
    ("json", "json", {}, "JSON"),
    ("geometry", "geometry", {}, "BYTES"),
    ("point", "point", {}, "BYTES"),
    ("linestring", "linestring", {}, "BYTES"),
    ("polygon", "polygon", {}, "BYTES"),
    ("multipoint", "multipoint", {}, "BYTES"),
    ("multilinestring", "multilinestring", {}, "BYTES"),
    ("multipolygon", "multipolygon", {}, "BYTES"),
    ("geometrycollection", "geometrycollection", {}, "BYTES"),
    ("geomcollection", "geomcollection", {}, "BYTES"),
]


def test_every_type_name_is_covered():
    names = {text.split("(")[0].split(" unsigned")[0] for text, _, _, _ in CASES}
    assert names == set(TYPE_NAMES)


@pytest.mark.parametrize("text,data_type,attrs,expected", CASES, ids=[c[0] for c in CASES])
def test_formats_and_source_map_each_type_alike(text, data_type, attrs, expected):
    assert from_mysql(text) == T(expected), text
    if data_type is not None:
        col = NativeColumn("c", data_type, text, **attrs)
        assert col.logical() == T(expected), text


def test_year_is_int_as_in_flink_cdc():
    assert logical_type("year") == T("INT")
    assert NativeColumn("y", "year", "year(4)").logical() == from_mysql("year") == T("INT")


def test_text_of_the_binary_character_set_is_bytes():
    col = NativeColumn("c", "varchar", "varchar(10)", charset="binary", length=10)
    assert col.logical() == T("BYTES")
    assert NativeColumn("c", "text", "text", charset="utf8mb4").logical() == T("STRING")


def test_unknown_types_fail_naming_the_type():
    with pytest.raises(ValueError, match="vector"):
        from_mysql("vector(3)")
    with pytest.raises(Exception, match="'c'.*vector"):
        NativeColumn("c", "vector", "vector(3)").logical()
