"""``python -m django_meepo.spec --markdown`` prints docs/reference.md's generated tables;
``--write PATH`` rewrites them in that file, keeping everything else."""

from __future__ import annotations

import argparse
from pathlib import Path

from .docs import blocks, rewrite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m django_meepo.spec", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print the tables of settings and task options")
    group.add_argument("--write", metavar="PATH", type=Path, help="rewrite the tables in PATH (docs/reference.md)")
    args = parser.parse_args(argv)
    if args.markdown:
        print("\n\n".join(blocks().values()))
        return 0
    path: Path = args.write
    old = path.read_text(encoding="utf-8")
    new = rewrite(old)
    if new != old:
        path.write_text(new, encoding="utf-8")
    print(f"{path}: {'rewritten' if new != old else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
