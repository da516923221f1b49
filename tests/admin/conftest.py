"""Fixtures of the admin tests: jobs in a given state, and staff users with and without the permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from django_meepo.models import Job

PASSWORD = "meepo-test-password"


def grant(user: User, *codenames: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="django_meepo",
                                                          codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh object: no stale permission cache


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    return grant(user, *codenames)


@pytest.fixture
def make_job() -> Callable[..., Job]:
    """A job of task ``record`` put straight into a state (test set-up only; the code under test never does)."""

    def make(status: str = "todo", *, task: str = "record", payload: Any = None, **fields: Any) -> Job:
        job = Job.objects.push(task, json=payload if payload is not None else {"n": 1})
        if status != "todo" or fields:
            Job.objects.filter(id=job.id).update(status=status, **fields)
        return Job.objects.get(id=job.id)

    return make


@pytest.fixture
def operator(db: None) -> User:
    return staff("operator", "view_job", "repush_job", "commit_job", "view_worker")


@pytest.fixture
def viewer(db: None) -> User:
    return staff("viewer", "view_job", "view_worker")


@pytest.fixture
def operator_client(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def csrf_client(operator: User) -> Client:
    """A client that enforces CSRF checks, as a browser's requests are checked."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    return client
