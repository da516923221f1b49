"""``python -m tests.support.producer COUNT [PREFIX]``: push COUNT ``record`` jobs, one per transaction, as an
application that must not lose a push would: each with an idempotency key (``PREFIX`` + its number), retried
on any database error until it succeeds (a COMMIT whose answer was lost may have committed; the key makes the
retry return that job instead of pushing a second). Prints ``pushed COUNT retries R`` at the end."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()
    from django.db import DatabaseError, connection, transaction

    from django_meepo import Job

    count, prefix = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "p")
    retries = 0
    for i in range(count):
        deadline = time.monotonic() + 120
        while True:
            try:
                with transaction.atomic():
                    Job.objects.push("record", json={"sleep": 0.02}, idempotency_key=f"{prefix}{i}")
                break
            except DatabaseError:
                retries += 1
                if time.monotonic() > deadline:
                    raise
                connection.close()
                time.sleep(0.2)
        time.sleep(0.01)
    print(f"pushed {count} retries {retries}", flush=True)


if __name__ == "__main__":
    main()
