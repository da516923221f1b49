"""Modules the peers' worker processes import: each defines the no-op job of one system.

Each reads its broker from ``BENCH_BROKER_URL`` and its queue name / key prefix from ``BENCH_PREFIX``, both set
by the adapter (in the harness child, and in the environment of the workers it starts).
"""

import os

ENV_BROKER = "BENCH_BROKER_URL"
ENV_PREFIX = "BENCH_PREFIX"


def broker_url() -> str:
    return os.environ[ENV_BROKER]


def prefix() -> str:
    return os.environ[ENV_PREFIX]
