"""The test project without its LOGGING, as a project made by ``django-admin startproject`` has none."""

from testproject.settings import *  # noqa: F403

LOGGING: dict[str, object] = {}
