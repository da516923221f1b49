"""Redis Cluster: ``MEEPO["REDIS_CLUSTER"]`` names the startup nodes; django-meepo then talks to the Cluster
through redis-py's ``RedisCluster`` (django-redis has no Cluster client) instead of the django-redis alias
``MEEPO["REDIS"]``.

The setting takes the shape of a django-redis cache entry (docs/dispatch.md, "Redis Cluster"):

* a URL, ``"redis://10.0.0.1:7000"``, or a list of them (``"host:port"`` works too): the startup nodes;
* or a dict ``{"NODES": [...], "OPTIONS": {...}}``, where ``OPTIONS`` takes the django-redis names that mean the
  same to ``RedisCluster``: ``SOCKET_CONNECT_TIMEOUT``, ``SOCKET_TIMEOUT``, ``PASSWORD``, ``USERNAME``, ``SSL``,
  ``MAX_CONNECTIONS``.

Unset timeouts default to 2 s (connect) and 5 s, so a node that hangs fails over instead of blocking. One client
per process (it keeps a pool per node and follows MOVED/ASK redirects and failovers on its own).
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

OPTIONS = {"SOCKET_CONNECT_TIMEOUT": "socket_connect_timeout", "SOCKET_TIMEOUT": "socket_timeout",
           "PASSWORD": "password", "USERNAME": "username", "SSL": "ssl", "MAX_CONNECTIONS": "max_connections"}
DEFAULT_OPTIONS = {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 5}
CHECK_ID = "meepo.E014"

_clients: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def _node(text: str) -> tuple[str, int]:
    """``"redis://host:port[/0]"`` or ``"host:port"`` → (host, port); ValueError naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"has a node that is not a string 'redis://host:port' or 'host:port' ({text!r})")
    parts = urlsplit(text if "://" in text else f"redis://{text}")
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"node {text!r}: the scheme must be redis:// or rediss://")
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"node {text!r}: a Redis Cluster has only database 0")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"node {text!r} must name a host and a port")
    return parts.hostname, port


def parse(value: Any) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The startup nodes and ``RedisCluster`` keyword arguments of ``MEEPO["REDIS_CLUSTER"]``; ValueError (saying
    what is wrong) for a bad value."""
    options: Any = {}
    nodes: Any = value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"NODES", "OPTIONS"})
        if unknown:
            raise ValueError(f"has unknown key(s) {', '.join(map(repr, unknown))} (known: 'NODES', 'OPTIONS')")
        nodes, options = value.get("NODES"), value.get("OPTIONS", {})
    if isinstance(nodes, str):
        nodes = [nodes] if nodes else []
    if not isinstance(nodes, list | tuple) or not nodes:
        raise ValueError("must name at least one startup node: a URL 'redis://host:port', a list of them, or "
                         "{'NODES': [...], 'OPTIONS': {...}}")
    if not isinstance(options, dict):
        raise ValueError(f"OPTIONS must be a dict, not {type(options).__name__}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"OPTIONS has unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(OPTIONS)})")
    for key in ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"):
        v = options.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0):
            raise ValueError(f"OPTIONS[{key!r}] must be a number of seconds > 0, not {v!r}")
    parsed = [_node(n) for n in nodes]
    kwargs = {OPTIONS[k]: v for k, v in {**DEFAULT_OPTIONS, **options}.items() if v is not None}
    if any(str(n).startswith("rediss://") for n in nodes):
        kwargs.setdefault("ssl", True)
    return parsed, kwargs


def validate(value: Any) -> str | None:
    """What is wrong with a ``MEEPO["REDIS_CLUSTER"]`` value, as a phrase (spec.Setting), or None (unset or good)."""
    if value is None:
        return None
    try:
        parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def cluster_client(value: Any) -> Any:
    """This process's ``RedisCluster`` for ``value`` (one per process: a forked child makes its own)."""
    key = (os.getpid(), repr(value))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                from redis.cluster import ClusterNode, RedisCluster

                nodes, kwargs = parse(value)
                client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **kwargs)
                _clients[key] = client
    return client
