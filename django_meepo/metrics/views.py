"""The Django view that serves the metrics: ``path("metrics/", django_meepo.metrics.views.metrics)``.

It answers in Prometheus's text exposition format (or OpenMetrics, when the scraper asks for it): this process's
counters and histograms — every process's, in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, see
docs/metrics.md) — and the queue gauges read from the database at the scrape. Without the ``[metrics]`` extra it
answers 501 with the line to install. It checks no permission: serve it on an internal address, or wrap it
(e.g. ``staff_member_required(metrics)``, or a check of the scraper's token) as your deployment needs.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from . import ENABLED, MISSING_MESSAGE


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """GET: the exposition of this process's metrics and of the queue gauges (501 without prometheus-client)."""
    if not ENABLED:
        return HttpResponse(MISSING_MESSAGE + "\n", status=501, content_type="text/plain; charset=utf-8")
    from prometheus_client import exposition

    from .collectors import scrape_registry

    encoder, content_type = exposition.choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)
