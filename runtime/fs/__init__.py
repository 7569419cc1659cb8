"""One small filesystem interface over local folders and HDFS (through WebHDFS), for the
files sink, the files source and checkpoint storage.

Paths are strings: a local path, or a URL ``hdfs://namenode:9870/a/b`` (also ``webhdfs://``;
``swebhdfs://`` for HTTPS) whose port is the namenode's *WebHDFS HTTP* port.  URLs join and
split with ``os.path.join``/``os.path.dirname`` like local paths, so code that builds paths
does not care which filesystem it is on; it asks :func:`filesystem` for the right one.

Errors are ``OSError`` subclasses on both (``FileNotFoundError``, ``PermissionError``,
``FileExistsError``, ``ConnectionError``, ``TimeoutError``), so callers handle one family,
and :func:`os_error` is the one translation of them into transient and terminal errors.

The interface (:class:`FileSystem`, :class:`FileStatus`, :class:`OutputFile`) lives in
:mod:`runtime.fs.base`, below both implementations (:mod:`runtime.fs.local`,
:mod:`runtime.fs.webhdfs`), which this package picks from; it is re-exported here.
"""
from __future__ import annotations

import errno
import os
import posixpath
import re
import threading

from runtime.errors import HubError, TerminalError, TransientError
from runtime.fs.base import FileStatus, FileSystem, OutputFile

__all__ = ["FileStatus", "FileSystem", "OutputFile", "HDFS_SCHEMES", "filesystem", "os_error",
           "is_unreachable", "is_url", "url_from_abspath", "encode_segment", "decode_segment",
           "path_under", "is_below", "normpath"]

#: URL schemes served by :class:`runtime.fs.webhdfs.WebHdfsFileSystem`.
HDFS_SCHEMES = ("hdfs", "webhdfs", "swebhdfs")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# ``os.path.abspath("hdfs://nn:9870/x")`` gives ``<cwd>/hdfs:/nn:9870/x``: see url_from_abspath.
_MANGLED = re.compile(r"(?:^|/)((?:s?web)?hdfs):/+(?=[^/])")


#: Failures a retry can't fix: the path is forbidden or names the wrong kind of thing.
_PERMANENT = (PermissionError, NotADirectoryError, IsADirectoryError)
_PERMANENT_ERRNOS = frozenset({errno.EROFS, errno.ENAMETOOLONG})


def os_error(what: str, exc: OSError) -> HubError:
    """The one translation of a filesystem error (local or WebHDFS, both raise ``OSError``):
    permissions, a path through a file, a read-only filesystem or a name too long do not fix
    themselves (terminal); anything else (a full disk, a flaky mount, a namenode or datanode
    that is down or slow) may (transient).  ``what`` starts the line."""
    text = f"{what}: {exc.strerror or exc}"
    if isinstance(exc, _PERMANENT) or exc.errno in _PERMANENT_ERRNOS:
        return TerminalError(text)
    return TransientError(text)


def is_unreachable(exc: BaseException) -> bool:
    """The store did not answer (a connection refused or lost, a timeout): the failure is not
    the file's, for callers that treat a file they can't read as a bad record."""
    return isinstance(exc, (ConnectionError, TimeoutError))


def is_url(path: str) -> bool:
    return _URL.match(path) is not None


def url_from_abspath(path: str) -> str:
    """Undo ``os.path.abspath`` on an HDFS URL (``<cwd>/hdfs:/nn:9870/x`` back to
    ``hdfs://nn:9870/x``); any other path is returned unchanged.  Configuration code that
    made a URL "absolute" as if it were a local path is thereby harmless."""
    if is_url(path):
        return path
    m = _MANGLED.search(path)
    if m is None:
        return path
    return f"{m.group(1)}://{path[m.end():]}"


_lock = threading.Lock()
_cache: dict[str, FileSystem] = {}


def filesystem(path: str) -> FileSystem:
    """The filesystem ``path`` lives on (one shared instance per namenode and user)."""
    m = _URL.match(path)
    if m is None:
        from runtime.fs.local import LOCAL

        return LOCAL
    scheme = m.group(1).lower()
    if scheme not in HDFS_SCHEMES:
        raise ValueError(f"{path}: unsupported URL scheme {scheme!r} (use a local path or "
                         f"{', '.join(s + '://' for s in HDFS_SCHEMES)})")
    from runtime.fs.webhdfs import WebHdfsFileSystem, authority

    key = authority(path)
    with _lock:
        fs = _cache.get(key)
        if fs is None:
            fs = _cache[key] = WebHdfsFileSystem(path)
    return fs


#: Characters of a name that are not safe in one path segment: separators, NUL and control
#: characters, ``%`` (the escape itself), ``:`` (invalid in HDFS names); and a leading ``.``
#: (``.``, ``..``, hidden names) or ``#`` (WebHDFS clients expand ``/#LATEST``).
_UNSAFE_IN_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\%:]|^[.#]")


def encode_segment(name: str) -> str:
    """``name`` (a database or table name: data, not a trusted path) as one path segment.

    Reversible (:func:`decode_segment`) percent-encoding of just the characters that are not
    safe in a segment: ``/``, ``\\``, NUL and other control characters, ``%`` and ``:``
    anywhere, and a leading ``.`` or ``#`` (so ``..``, ``.`` and hidden names can't occur).
    Everything else, unicode included, stays as it is, so ordinary names keep their layout:
    ``orders`` -> ``orders``, ``../x`` -> ``%2E.%2Fx``, ``a/b`` -> ``a%2Fb``, ``..`` ->
    ``%2E.``.  The result is never empty, ``.`` or ``..`` and holds no separator.
    """
    if not name:
        raise ValueError("an empty name can't be a path segment")
    return _UNSAFE_IN_SEGMENT.sub(lambda m: f"%{ord(m.group()):02X}", name)


def decode_segment(segment: str) -> str:
    """The name :func:`encode_segment` encoded as ``segment``."""
    from urllib.parse import unquote

    return unquote(segment, errors="strict")


def path_under(root: str, *parts: str) -> str:
    """``root`` joined with relative ``parts``; raises ValueError when the result is not
    strictly below ``root`` (:func:`is_below`; a part holding ``..`` or an absolute path):
    the last line of defence against writing outside a sink's folder."""
    path = os.path.join(root, *parts)
    if not is_below(path, root):
        raise ValueError(f"{path} is not below {root}")
    return path


def is_below(path: str, root: str) -> bool:
    """Whether ``path``, normalised (``..`` resolved, symbolic links not), is strictly below
    ``root``: both local paths, or both URLs of the same filesystem."""
    if is_url(root) or is_url(path):
        m_root, m_path = _URL.match(root), _URL.match(path)
        if m_root is None or m_path is None:
            return False
        base, sub = _split_url(root), _split_url(path)
        if base[0].lower() != sub[0].lower():  # another scheme, user or namenode
            return False
        return _strictly_below(posixpath.normpath(sub[1]), posixpath.normpath(base[1]), "/")
    return _strictly_below(os.path.normpath(os.path.abspath(path)),
                           os.path.normpath(os.path.abspath(root)), os.sep)


def _split_url(url: str) -> tuple[str, str]:
    """(``scheme://authority``, path) of a URL."""
    m = _URL.match(url)
    assert m is not None
    rest = url[m.end():]
    slash = rest.find("/")
    if slash < 0:
        return url, "/"
    return url[:m.end() + slash], rest[slash:]


def _strictly_below(path: str, root: str, sep: str) -> bool:
    return path != root and path.startswith(root.rstrip(sep) + sep)


def normpath(path: str) -> str:
    """An absolute, normalised local path, or the URL without a trailing slash."""
    if is_url(path):
        return path.rstrip("/") if path.count("/") > 3 else path
    return os.path.abspath(os.path.expanduser(path))
