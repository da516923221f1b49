"""A paginator that never counts a whole large table: it counts at most ``cap`` + 1 rows.

Django's changelist counts the (filtered) queryset on every page load; on a table of millions of jobs that COUNT
scans an index of millions of entries. ``SELECT COUNT(*) FROM (SELECT id … LIMIT cap + 1)`` stops early. The list
then says "more than 10,000 jobs" and pages up to the cap; filters narrow the list further.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        rows: QuerySet[Any] = self.object_list  # type: ignore[assignment]  # the changelist's queryset
        return rows.order_by().values("pk")[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        """True when there are more rows than were counted."""
        return self.count > self.cap
