"""The metrics port of a worker process (``meepo_consume --metrics-port N``): prometheus-client's own HTTP
server, on a daemon thread, serving what :func:`collectors.scrape_registry` collects.

What if the port is taken? :func:`serve` raises ``OSError`` before the worker starts (the command reports it).
What if the worker process is replaced (``--max-jobs``, a time limit)? ``exec`` closes the listening socket and
the new process binds the port again; the counters start from zero, which Prometheus's ``rate()`` expects of a
restart.
"""

from __future__ import annotations

from typing import Any

from . import require


def serve(port: int, addr: str = "0.0.0.0") -> Any:
    """Start serving the metrics on ``addr:port``; returns the server (ImproperlyConfigured without the extra)."""
    prom = require()
    from .collectors import scrape_registry

    # Each request is answered on a new thread: the queue collector closes that thread's database connection.
    server, _thread = prom.start_http_server(port, addr=addr, registry=scrape_registry(close_connection=True))
    return server
