"""How the admin renders payloads (pure functions, no services)."""

from __future__ import annotations

from django_meepo.admin.display import HEX_SHOWN_BYTES, hexdump, human_size, render_payload


def test_json_is_pretty_printed_with_unicode_kept() -> None:
    shown = render_payload('{"a":[1,2],"b":"ü"}'.encode())
    assert shown.kind == "json" and shown.text == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "ü"\n}'
    assert not shown.truncated and shown.summary == "json, 20 bytes"


def test_text_binary_and_empty() -> None:
    assert render_payload(b"plain text").kind == "text"
    assert render_payload(b"").kind == "empty" and render_payload(b"").summary == "empty"
    binary = render_payload(b"\xff\x00abc")
    assert binary.kind == "binary" and binary.text == "00000000  ff 00 61 62 63" + " " * 35 + "|..abc|"


def test_large_payloads_are_truncated_and_say_so() -> None:
    text = render_payload(("é" * 20000).encode(), limit=1001)  # the cut falls inside a two-byte character
    assert text.kind == "text" and text.text == "é" * 500 and text.shown == 1000 and text.size == 40000
    assert text.summary == "text, 39.1 KiB, truncated: first 1000 bytes shown"
    big_json = render_payload(b'{"a": "' + b"x" * 100 + b'"}', limit=50)
    assert big_json.kind == "text" and big_json.truncated  # never parsed when cut
    blob = render_payload(bytes(range(256)) * 100)
    assert blob.kind == "binary" and blob.shown == HEX_SHOWN_BYTES
    assert blob.text.count("\n") == HEX_SHOWN_BYTES // 16 - 1


def test_helpers() -> None:
    assert [human_size(n) for n in (1, 2, 2048, 3 * 1024 * 1024)] == ["1 byte", "2 bytes", "2.0 KiB", "3.0 MiB"]
    assert hexdump(b"A" * 17).splitlines()[1].startswith("00000010  41")
