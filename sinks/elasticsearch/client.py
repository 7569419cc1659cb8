"""The Elasticsearch connection: client construction, index creation and mapping updates, and
bulk requests with retries and per-item outcomes."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import ConfigError, MissingExtraError, TerminalError, TransientError
from runtime.retry import Backoff, retry
from runtime.schema import TableSchema
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.types import index_mapping

try:
    import elastic_transport
    from elasticsearch import ApiError, Elasticsearch
    from elasticsearch import ConnectionError as EsConnectionError
    from elasticsearch import ConnectionTimeout
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError("elasticsearch", "elasticsearch") from exc

log = logging.getLogger(__name__)

#: Statuses worth retrying: the cluster is busy or a node is away.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: What of a bulk answer is read: per item only its status and error (the whole answer of
#: thousands of items costs more to parse than the request costs to build).
BULK_ANSWER = ["errors", "items.*.status", "items.*.error"]
_COMPAT = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)\s*;\s*compatible-with=\d+")


class PlainMediaTypeNode(elastic_transport.Urllib3HttpNode):
    """An HTTP node for OpenSearch (and Elasticsearch 7): it sends plain ``application/json``
    / ``application/x-ndjson`` where the elasticsearch 8/9 client insists on its compatibility
    media type, which those servers reject with 406, and it lets their answers through the
    client's product check, which refuses every successful answer without the
    ``X-Elastic-Product: Elasticsearch`` header (OpenSearch never sends it) with
    ``UnsupportedProductError``.  The client offers no switch for either."""

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: Any = None, **kw: Any) -> Any:
        if headers:
            headers = elastic_transport.HttpHeaders(headers)
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value:
                    headers[name] = _COMPAT.sub(r"application/\1", value)
        resp = super().perform_request(method, target, body=body, headers=headers, **kw)
        if "x-elastic-product" not in resp.meta.headers:
            resp.meta.headers["x-elastic-product"] = "Elasticsearch"
        return resp


def connect(config: ElasticsearchSinkConfig, distribution: str | None = None
            ) -> Elasticsearch:
    """A client for ``config``.  With ``compatibility-mode = "auto"`` it speaks the dialect of
    ``distribution`` (``"opensearch"``: plain media types; anything else: the elasticsearch
    client's own), or, when that is None, of the server's answer to ``GET /`` asked now
    (:func:`server_distribution`; its errors are the client's, untranslated).  Otherwise it
    connects lazily, on the first request."""
    compat = config.compatibility_mode
    if compat == "auto":
        if distribution is None:
            distribution = server_distribution(config)
        compat = distribution != "opensearch"
    return _client(config, plain=not compat)


def server_distribution(config: ElasticsearchSinkConfig) -> str:
    """What the server is, from its root endpoint: ``"opensearch"`` when it says so
    (``version.distribution``), else ``"elasticsearch"``.  Asked with plain JSON, which
    Elasticsearch 7/8/9 and OpenSearch all accept.  Raises the client's errors."""
    es = _client(config, plain=True)
    try:
        body = es.perform_request("GET", "/", headers={"accept": "application/json"}).body
    finally:
        es.close()
    version = body.get("version") if isinstance(body, dict) else None
    dist = version.get("distribution") if isinstance(version, dict) else None
    return "opensearch" if dist == "opensearch" else "elasticsearch"


def _client(config: ElasticsearchSinkConfig, plain: bool) -> Elasticsearch:
    kw: dict[str, Any] = {"request_timeout": config.request_timeout, "max_retries": 0,
                          "verify_certs": config.verify_certs}
    if config.ca_certs:
        kw["ca_certs"] = config.ca_certs
    if config.username is not None:
        password = config.password.get_secret_value() if config.password else ""
        kw["basic_auth"] = (config.username, password)
    if config.api_key is not None:
        kw["api_key"] = config.api_key.get_secret_value()
    if plain:
        kw["node_class"] = PlainMediaTypeNode
    try:
        return Elasticsearch(config.hosts, **kw)
    except ValueError as exc:
        raise ConfigError(str(exc), key="hosts") from None


@dataclass
class ItemFailure:
    """A bulk item that failed for good: its position in the request lines, and why."""

    position: int
    status: int
    reason: str


@dataclass
class VersionConflict:
    """A bulk item refused with 409: the index holds the version ``current`` of the document,
    not below the ``provided`` one (None: the answer did not say).  ``provided == current`` is
    a replay (the same change written again after a crash); ``provided < current`` a change
    older than what the index has: lost, unless an older change is written again."""

    position: int
    provided: int | None
    current: int | None

    @property
    def is_replay(self) -> bool:
        return self.current is not None and self.current == self.provided


@dataclass
class BulkOutcome:
    """What became of the items of a bulk request that were not written."""

    failures: list[ItemFailure] = field(default_factory=list)
    conflicts: list[VersionConflict] = field(default_factory=list)


#: Elasticsearch's and OpenSearch's reason of a version conflict with external versions.
_CONFLICT = re.compile(r"current version \[(-?\d+)\] is higher or equal to the one provided "
                       r"\[(-?\d+)\]")


def version_conflict(position: int, result: dict[str, Any]) -> VersionConflict:
    """The conflict a 409 bulk item ``result`` reports (versions None when not told)."""
    err = result.get("error")
    reason = err.get("reason", "") if isinstance(err, dict) else str(err or "")
    m = _CONFLICT.search(reason)
    if m is None:
        return VersionConflict(position, None, None)
    return VersionConflict(position, int(m.group(2)), int(m.group(1)))


class BulkClient:
    """Sends bulk bodies; retries whole requests and single items on 429/5xx with backoff.
    Thread-confined (one per applier)."""

    def __init__(self, config: ElasticsearchSinkConfig):
        self.config = config
        #: the client; with ``compatibility-mode = "auto"`` made by the first request (which
        #: asks the server what it is, under the retries and error translation of _call)
        self.es: Elasticsearch | None = None
        if config.compatibility_mode != "auto":
            self.es = connect(config)
        self._mapped: dict[str, TableSchema] = {}
        self._owners: dict[str, tuple[str, str]] = {}  # index -> (index source, table id)

    def close(self) -> None:
        if self.es is not None:
            self.es.close()

    # -- indexes ------------------------------------------------------------------------------
    def ensure_index(self, index: str, schema: TableSchema) -> None:
        """Create ``index`` with the mapping of ``schema``, or add new columns to its mapping.
        Cached: one round trip per index and schema (two for an index that exists).

        Refuses (:class:`ConfigError`) a table whose index another table of different name
        already writes (``Orders`` and ``orders`` both ``shop_orders``): in this process, and
        across processes through the ``_meta`` the sink gives the indexes it creates
        (``hub_table``: the table that made it; see
        :meth:`~sinks.elasticsearch.config.ElasticsearchSinkConfig.index_source`)."""
        if self._mapped.get(index) == schema:
            return
        cfg = self.config
        source = cfg.index_source(schema.table)
        owner = self._owners.get(index)
        if owner is not None and owner[0] != source:
            raise _collision(index, owner[1], schema.table)
        mapping = index_mapping(schema, cfg.decimal_mapping, cfg.timestamp_mapping,
                                cfg.json_mapping)
        body: dict[str, Any] = {"mappings": {**mapping, "_meta": {"hub_table": schema.table}}}
        if cfg.index_settings:
            body["settings"] = {"index": dict(cfg.index_settings)}
        resp = self._call(lambda: self._es.options(ignore_status=400).indices.create(
            index=index, **body), f"creating {index}")
        if resp.meta.status == 400:
            err = _error_type(resp.body)
            if err != "resource_already_exists_exception":
                raise ConfigError(f"elasticsearch: can't create index {index!r} for table "
                                  f"{schema.table}: {_error_text(resp.body)}", key="index")
            if owner is None:
                self._check_owner(index, source, schema.table)
            resp = self._call(lambda: self._es.options(ignore_status=400).indices.put_mapping(
                index=index, **mapping), f"updating the mapping of {index}")
            if resp.meta.status == 400:
                # An existing field of another type: documents still index when their values
                # fit, so go on and say what could not be changed.
                log.warning("elasticsearch: mapping of index %s not updated for %s: %s", index,
                            schema.table, _error_text(resp.body))
        else:
            log.info("elasticsearch: created index %s for %s", index, schema.table)
        self._owners[index] = (source, schema.table)
        self._mapped[index] = schema

    def _check_owner(self, index: str, source: str, table: str) -> None:
        """Refuse an existing ``index`` whose ``_meta`` names another table that maps to it
        under the current ``index`` option from another name (a collision, not a merge the
        option asks for; a table that maps elsewhere now made it under an earlier option)."""
        resp = self._call(lambda: self._es.indices.get_mapping(index=index),
                          f"reading the mapping of {index}")
        meta: dict[str, Any] = {}
        for entry in resp.body.values():  # one entry: the index (an alias may name another)
            meta = entry.get("mappings", {}).get("_meta") or {}
        other = meta.get("hub_table")
        if not isinstance(other, str) or other == table:
            return
        try:
            same_target = self.config.index_for(other) == index
        except ConfigError:
            return  # it maps to no index under the current option
        if same_target and self.config.index_source(other) != source:
            raise _collision(index, other, table)

    def info(self, what: str) -> dict[str, Any]:
        """The server's root answer (``GET /``), asked once (no retries: the runner waits
        for a server that is away at start)."""
        return self._once(lambda: self._es.info(), what).body

    def refresh(self, indexes: set[str]) -> None:
        if indexes:
            self._call(lambda: self._es.indices.refresh(index=",".join(sorted(indexes))),
                       "refreshing")

    # -- bulk ---------------------------------------------------------------------------------
    def bulk(self, n: int, body_of: Callable[[list[int] | None], bytes]) -> BulkOutcome:
        """Send ``n`` actions; ``body_of(None)`` is the whole body, ``body_of(positions)`` the
        body of just those actions (for retrying rejected items).  Returns the items that
        failed for good and the items refused with 409 "version conflict" (a version not above
        the stored one: a replay, or a change older than the document; not failures, the
        caller counts them); a 404 of a delete (nothing to delete) is success.

        One retry loop (:func:`~runtime.retry.retry`) covers the request and its items: a
        request that fails transiently is sent again, and so are only the items rejected with
        429/5xx of an answered one.  Raises :class:`TransientError` once retries are used
        up."""
        outcome = BulkOutcome()
        todo: list[list[int] | None] = [None]  # the positions still to send (None: all)

        def attempt() -> None:
            positions = todo[0]
            body = body_of(positions)
            resp = self._once(lambda: self._es.bulk(operations=body, filter_path=BULK_ANSWER),
                              "bulk request")
            rejected: list[int] = []
            if resp.body.get("errors"):
                current = positions if positions is not None else range(n)
                for pos, item in zip(current, resp.body["items"]):
                    (action, result), = item.items()
                    status = result.get("status", 500)
                    if status < 300 or (status == 404 and action == "delete"):
                        continue
                    if status == 409:
                        outcome.conflicts.append(version_conflict(pos, result))
                    elif status in RETRY_STATUSES or status >= 500:
                        rejected.append(pos)
                    else:
                        outcome.failures.append(ItemFailure(pos, status, _error_text(result)))
            if rejected:
                todo[0] = rejected
                sent = n if positions is None else len(positions)
                raise TransientError(f"elasticsearch: bulk request: {len(rejected)} of {sent} "
                                     f"items rejected (busy)")

        retry(attempt, self._policy, "elasticsearch: bulk request", log)
        return outcome

    @property
    def _es(self) -> Elasticsearch:
        assert self.es is not None, "only inside _call"
        return self.es

    @property
    def _policy(self) -> Backoff:
        return Backoff(self.config.retry_backoff, 10.0, self.config.max_retries)

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()`` with the retries of :attr:`_policy` on transient errors
        (:meth:`_once`)."""
        return retry(lambda: self._once(fn, what), self._policy, f"elasticsearch: {what}", log)

    def _once(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()`` once, its errors translated: the one error translation of this client
        (also of the first request's ``GET /`` with ``compatibility-mode = "auto"``).
        Connection errors and 429/5xx answers are transient, 401/403 a configuration error,
        other answers terminal; every message names ``what``."""
        try:
            if self.es is None:  # compatibility-mode "auto": asks GET / first
                self.es = connect(self.config)
            return fn()
        except (EsConnectionError, ConnectionTimeout) as exc:
            raise TransientError(f"elasticsearch: {what}: {type(exc).__name__}: {exc}"
                                 ) from None
        except ApiError as exc:
            status = exc.meta.status
            text = f"elasticsearch: {what}: {status} {_error_text(exc.body)}"
            if status in RETRY_STATUSES or status >= 500:
                raise TransientError(text) from None
            if status in (401, 403):
                raise ConfigError(text, key="username") from None
            raise TerminalError(text) from None


def _collision(index: str, first: str, second: str) -> ConfigError:
    return ConfigError(f"elasticsearch: tables {first} and {second} both map to index {index} "
                       f"(index names are lower case, other characters become _); set index "
                       f"(or a route) so that they differ", key="index")


def _error_type(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    return err.get("type", "") if isinstance(err, dict) else ""


def _error_text(body: Any) -> str:
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        text = f"{err.get('type', 'error')}: {err.get('reason', '')}"
        cause = err.get("caused_by")
        if isinstance(cause, dict):
            text += f" ({cause.get('type')}: {cause.get('reason')})"
        return text
    return str(err)[:500]
