"""The one classification of PyMySQL's errors (MySQL and MariaDB) as transient or terminal,
used by the MySQL source and the JDBC sink's MySQL dialect alike.

Each group of codes below carries why it is in its class, from the MySQL server and client
error references (dev.mysql.com/doc/mysql-errors/8.0/en/) and MariaDB's
(mariadb.com/kb/en/mariadb-error-codes/).  The rule behind them: *transient* when the same
call may succeed later without anyone changing anything (the server is restarting, the
network dropped, a lock conflict), *terminal* when a person must change something first (a
password, a grant, a host name, a TLS setting, the SQL).  A code in no group is terminal: an
error nobody classified is better shown once than retried for ever.

Classes (:class:`Kind`):

* ``REFUSED``: the server refused the login (user, password, host, database) - terminal; the
  caller's line names the user.
* ``DENIED``: logged in, but the user lacks a privilege for a statement - terminal; the
  caller's line names the user.
* ``TRANSIENT`` / ``TERMINAL``: everything else.

Exceptions without a code: ``InterfaceError`` (the connection is closed or was never open)
and socket errors (``OSError``) are transient; any other PyMySQL error without a numeric
code (an unexpected authentication packet) is terminal.  Hub errors are not classified here.
"""
from __future__ import annotations

import enum


class Kind(enum.Enum):
    TRANSIENT = "transient"
    TERMINAL = "terminal"
    REFUSED = "refused"     # login refused
    DENIED = "denied"       # a privilege is missing

    @property
    def transient(self) -> bool:
        return self is Kind.TRANSIENT


#: (kind, codes, why): the code table.  Server codes are < 2000, client codes 2000..2999.
GROUPS: tuple[tuple[Kind, frozenset[int], str], ...] = (
    (Kind.REFUSED, frozenset({1044, 1045, 1130, 1698}),
     "access denied to a database (1044), wrong user or password (1045), host not allowed "
     "to connect (1130), login without a password refused by the auth plugin (1698): the "
     "credentials or the account must change"),
    (Kind.DENIED, frozenset({1142, 1143, 1227, 1370}),
     "command denied on a table (1142) or column (1143), a global privilege missing such as "
     "REPLICATION SLAVE or SUPER (1227), denied on a routine (1370): a GRANT must change"),
    (Kind.TRANSIENT, frozenset({1040, 1041, 1203, 1226}),
     "too many connections (1040), out of memory (1041), max_user_connections reached "
     "(1203), a per-user resource limit reached (1226: MAX_USER_CONNECTIONS, queries or "
     "updates per hour): other clients free them, the hour ends"),
    (Kind.TRANSIENT, frozenset({1053, 1077, 1927, 4031}),
     "the server is shutting down (1053, 1077 normal shutdown), killed this connection "
     "(1927, MariaDB: KILL or shutdown), or dropped it for inactivity (4031, MySQL 8.0.24+ "
     "wait_timeout): a new connection works once it is up"),
    (Kind.TRANSIENT, frozenset({1152, 1184, 1158, 1159, 1160, 1161}),
     "the server aborted the connection (1152, 1184: a network or timeout problem in the "
     "handshake or afterwards), or got an error or timeout reading or writing the network "
     "(1158-1161): the network, not the request"),
    (Kind.TRANSIENT, frozenset({1205, 1213, 1613, 1614}),
     "lock wait timeout (1205), deadlock (1213), XA branch rolled back for a timeout or a "
     "deadlock (1613, 1614): the conflicting transaction ends, redoing the work succeeds"),
    (Kind.TRANSIENT, frozenset({2001, 2002, 2003, 2004, 2005, 2006, 2012, 2013, 2055}),
     "client side: can't create a socket (2001, 2004), can't connect over the socket or TCP "
     "(2002, 2003: PyMySQL reports every socket error of a connect so, a name that does not "
     "resolve too), unknown host (2005: like a stopped docker-compose service, a name may "
     "resolve again; the line names the host), handshake failed (2012: a server starting), "
     "server gone away or connection lost (2006, 2013, 2055)"),
    (Kind.TERMINAL, frozenset({2026, 2059, 2061}),
     "client side: the TLS connection can't be set up (2026: certificates, ssl settings, a "
     "server without TLS), the authentication plugin can't be loaded or failed (2059, 2061: "
     "e.g. caching_sha2_password without TLS or the cryptography package): settings must "
     "change"),
)

_KIND: dict[int, Kind] = {code: kind for kind, codes, _ in GROUPS for code in codes}


def code_of(exc: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL error, ``None`` when it has none (a socket
    error's errno is not one)."""
    if isinstance(exc, OSError):
        return None
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) and not isinstance(args[0], bool) \
        else None


def text_of(exc: BaseException) -> str:
    """What the server or client said (without the code)."""
    args = getattr(exc, "args", ())
    return str(args[-1]) if args else (str(exc) or type(exc).__name__)


def is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one this module classifies: a PyMySQL error or a socket error."""
    import pymysql

    return isinstance(exc, (pymysql.err.MySQLError, OSError))


def kind(exc: BaseException) -> Kind:
    """The class of a PyMySQL or socket error (see the module doc and :data:`GROUPS`)."""
    import pymysql

    code = code_of(exc)
    if code is not None and code in _KIND:
        return _KIND[code]
    if isinstance(exc, (pymysql.err.InterfaceError, OSError)):
        return Kind.TRANSIENT  # the connection is closed, never opened, or the socket failed
    return Kind.TERMINAL


def is_transient(exc: BaseException) -> bool:
    """Whether a PyMySQL or socket error is worth retrying after a restart."""
    return kind(exc) is Kind.TRANSIENT


def why(code: int) -> str | None:
    """The reason of the group ``code`` is in, ``None`` for an unlisted code (terminal)."""
    for _, codes, reason in GROUPS:
        if code in codes:
            return reason
    return None
