"""Where a check's hint sends the reader: the hosted docs, since the wheel ships no ``docs/*.md``.

:data:`DOCS_URL` is the ``Documentation`` entry of ``[project.urls]`` in the installed package's metadata (the
folder that holds the ``docs/*.md`` pages). While the project declares none, a hint cites the README section
(GitHub-style anchor) that covers the topic: the README is the one page every copy of the package shows (the
index's project page, the repository's front page). Reading the metadata has no side effect; a missing or
broken installation only means the README fallback.
"""

from __future__ import annotations

from importlib import metadata


def _documentation_url() -> str | None:
    try:
        entries = metadata.metadata("django-meepo").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in entries:
        label, _, url = str(entry).partition(",")
        if label.strip().lower() in ("documentation", "docs") and url.strip():
            return url.strip().rstrip("/")
    return None


DOCS_URL: str | None = _documentation_url()


def doc_link(page: str, anchor: str, readme_anchor: str, base: str | None = DOCS_URL) -> str:
    """``<DOCS_URL>/<page>#<anchor>`` on the hosted docs, or ``README.md#<readme_anchor>`` while there are none."""
    if base:
        return f"{base}/{page}#{anchor}"
    return f"README.md#{readme_anchor}"
