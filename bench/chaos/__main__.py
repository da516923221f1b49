"""``python -m bench.chaos``: see ``bench/chaos/cli.py`` and docs/reliability.md."""

import sys

from bench.chaos.cli import main

sys.exit(main())
