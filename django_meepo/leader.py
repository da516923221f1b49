"""Leadership leases in the database: one sweeper leads per task at a time; the others stand by.

Correctness never depends on it — every change to a job is conditional — it only saves duplicate work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from .models import Lease


def hold(name: str, holder: str, *, ttl: float, now: datetime, using: str) -> bool:
    """Take or renew the lease ``name`` for ``holder``; True if ``holder`` holds it until now + ttl."""
    until = now + timedelta(seconds=ttl)
    taken = (Lease.objects.using(using).filter(name=name)
             .filter(Q(holder=holder) | Q(expires_at__lt=now)).update(holder=holder, expires_at=until))
    if taken:
        return True
    try:
        with transaction.atomic(using=using):
            Lease.objects.using(using).create(name=name, holder=holder, expires_at=until)
        return True
    except IntegrityError:
        return False


def let_go(name: str, holder: str, *, using: str) -> None:
    Lease.objects.using(using).filter(name=name, holder=holder).delete()
