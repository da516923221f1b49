"""MEEPO["JSON_ENCODER"]: json= values with Decimal, datetime and UUID, through the encoder a project names."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import InvalidPayload, Job
from django_meepo.checks import check_settings

pytestmark = pytest.mark.django_db

DJANGO_ENCODER = "django.core.serializers.json.DjangoJSONEncoder"
VALUE = {"price": Decimal("9.90"), "at": datetime(2026, 12, 3, 14, 0, tzinfo=UTC),
         "id": uuid.UUID("12345678-1234-5678-1234-567812345678")}


def test_without_an_encoder_such_values_are_refused_with_a_hint() -> None:
    with pytest.raises(InvalidPayload, match=r"not JSON-serialisable: .*Decimal.*MEEPO\['JSON_ENCODER'\]"):
        Job.objects.push("record", json=VALUE)
    assert not Job.objects.exists()


def test_push_and_push_many_use_the_encoder_named() -> None:
    with override_settings(MEEPO={**settings.MEEPO, "JSON_ENCODER": DJANGO_ENCODER}):
        one = Job.objects.push("record", json=VALUE)
        [many] = Job.objects.push_many("record", json=[VALUE])
    expected = {"price": "9.90", "at": "2026-12-03T14:00:00Z", "id": "12345678-1234-5678-1234-567812345678"}
    assert json.loads(Job.objects.get(id=one.id).payload_bytes) == expected
    assert json.loads(Job.objects.get(id=many.id).payload_bytes) == expected


@pytest.mark.parametrize(("value", "fragment"), [
    ("no.such.Encoder", "does not import"),
    ("django.db.models.Model", "is not a json.JSONEncoder subclass"),
    (42, "must be None or the dotted path"),
])
def test_a_bad_encoder_is_a_check_error_and_push_refuses_it(value, fragment) -> None:  # type: ignore[no-untyped-def]
    with override_settings(MEEPO={**settings.MEEPO, "JSON_ENCODER": value}):
        found = {m.id: m.msg for m in check_settings()}
        assert "meepo.E001" in found and fragment in found["meepo.E001"], found
        if isinstance(value, str):
            with pytest.raises(Exception, match=fragment):
                Job.objects.push("record", json={"a": 1})
    assert not Job.objects.exists()
