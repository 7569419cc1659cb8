"""The one classification of PyMySQL's errors (formats/clients/mysql.py): the code table says
what the MySQL/MariaDB error references say, and the MySQL source and the JDBC sink decide
alike for every code (they used to disagree on 1077, 1158-1161, 1184, 4031, 2000+ and 1227).
The errors are PyMySQL's own exception classes, built as PyMySQL builds them."""
from __future__ import annotations

import pymysql
import pytest

from formats.clients import mysql as mysql_errors
from formats.clients.mysql import GROUPS, Kind, kind
from runtime.errors import HubError, TerminalError, TransientError
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from sources.mysql.protocol import translate

SETTINGS = {"host": "db.example", "port": 3306, "user": "cdc"}
#: (code, kind): what the references say, including every code the two used to disagree on.
TABLE = [
    (1044, Kind.REFUSED), (1045, Kind.REFUSED), (1130, Kind.REFUSED), (1698, Kind.REFUSED),
    (1142, Kind.DENIED), (1143, Kind.DENIED), (1227, Kind.DENIED), (1370, Kind.DENIED),
    (1040, Kind.TRANSIENT), (1041, Kind.TRANSIENT), (1203, Kind.TRANSIENT),
    (1226, Kind.TRANSIENT),
    (1053, Kind.TRANSIENT), (1077, Kind.TRANSIENT), (1927, Kind.TRANSIENT),
    (4031, Kind.TRANSIENT), (1152, Kind.TRANSIENT), (1184, Kind.TRANSIENT),
    (1158, Kind.TRANSIENT), (1159, Kind.TRANSIENT), (1160, Kind.TRANSIENT),
    (1161, Kind.TRANSIENT), (1205, Kind.TRANSIENT), (1213, Kind.TRANSIENT),
    (1613, Kind.TRANSIENT), (1614, Kind.TRANSIENT),
    (2002, Kind.TRANSIENT), (2003, Kind.TRANSIENT), (2005, Kind.TRANSIENT),
    (2006, Kind.TRANSIENT), (2013, Kind.TRANSIENT), (2055, Kind.TRANSIENT),
    (2026, Kind.TERMINAL), (2059, Kind.TERMINAL), (2061, Kind.TERMINAL),
    # unlisted: a syntax error, a missing table, unknown and out-of-sync client errors
    (1064, Kind.TERMINAL), (1146, Kind.TERMINAL), (2000, Kind.TERMINAL), (2014, Kind.TERMINAL),
]


def error(code: int, text: str = "the server said so") -> pymysql.err.MySQLError:
    cls = pymysql.err.error_map.get(code, pymysql.err.OperationalError)
    return cls(code, text)


def sink_dialect():
    return JdbcSink(JdbcSinkConfig.model_validate(
        {"url": "mysql://cdc:pw@db.example:3306/shop"})).dialect()


@pytest.mark.parametrize(("code", "expected"), TABLE)
def test_the_code_table(code, expected):
    assert kind(error(code)) is expected
    assert (mysql_errors.why(code) is None) == (code in (1064, 1146, 2000, 2014))


def test_no_code_is_in_two_groups():
    seen: list[int] = [c for _, codes, _ in GROUPS for c in codes]
    assert len(seen) == len(set(seen))
    assert all(reason for _, _, reason in GROUPS)


def _every_case() -> list[BaseException]:
    codes = sorted({c for _, cs, _ in GROUPS for c in cs} | {c for c, _ in TABLE})
    return [error(c) for c in codes] + [
        pymysql.err.InterfaceError(0, ""),                 # a closed connection
        ConnectionResetError(104, "Connection reset by peer"),
        pymysql.err.OperationalError("received unknown auth switch request"),
    ]


@pytest.mark.parametrize("exc", _every_case(), ids=lambda e: repr(e)[:60])
def test_source_and_sink_decide_alike(exc):
    source = translate(exc, SETTINGS)
    sink = sink_dialect().translate(exc, "writing")
    assert isinstance(source, HubError) and isinstance(sink, HubError)
    assert source.transient == sink.transient == mysql_errors.is_transient(exc)
    assert isinstance(source, TransientError if source.transient else TerminalError)
    assert isinstance(sink, TransientError if sink.transient else TerminalError)
    assert "\n" not in str(source) and "\n" not in str(sink)


@pytest.mark.parametrize("code", [1045, 1227])
def test_refused_logins_and_missing_privileges_name_the_user_on_both_sides(code):
    source = str(translate(error(code), SETTINGS))
    sink = str(sink_dialect().translate(error(code), "writing"))
    assert "'cdc'" in source and "'cdc'" in sink
    if code == 1227:  # logged in: a grant is missing, the password is right
        assert "lacks a privilege" in source and "lacks a privilege" in sink
        assert "refused" not in source and "refused" not in sink
    else:
        assert "refused user 'cdc'" in source and "refused user 'cdc'" in sink


def test_hub_errors_and_other_exceptions_pass_the_source_unchanged():
    hub = TransientError("already said")
    bug = KeyError("x")
    assert translate(hub, SETTINGS) is hub
    assert translate(bug, SETTINGS) is bug
