"""Text a worker stores (a job's result, its error and traceback), made storable on every database.

* NUL characters are removed: PostgreSQL text cannot hold them (``DataError``).
* Lone surrogates (``"\\ud800"``, from ``surrogateescape`` decoding or bad JSON) cannot be encoded as UTF-8: the
  driver raises ``UnicodeEncodeError`` on any database. They are kept as visible escapes (``\\ud800``); in JSON
  text such an escape reads back as the very same string.
* The text is cut to a number of UTF-8 bytes, so that one outcome cannot outgrow the server's packet
  (MariaDB/MySQL ``max_allowed_packet``): a result keeps its head, an error keeps its tail (the exception line
  ends a traceback), and a marker says how many bytes were cut. Limits: ``MEEPO["MAX_RESULT_BYTES"]`` (default
  1 MiB) and ``MEEPO["MAX_ERROR_BYTES"]`` (default 64 KiB).
"""

from __future__ import annotations

from .conf import get_settings


def clean(text: str) -> str:
    """``text`` without NUL characters and with each lone surrogate as a visible ``\\udXXX`` escape."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _marker(cut: int, setting: str) -> str:
    return f"[… {cut} bytes cut by django-meepo: over {setting}]"


def cut_head(text: str, limit: int, setting: str = "MAX_RESULT_BYTES") -> str:
    """The first bytes of ``text`` (whole characters) and a marker, at most ``limit`` UTF-8 bytes in all."""
    if len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(_marker(len(data), setting).encode("utf-8")) - 1
    if room <= 0:
        return data[:limit].decode("utf-8", "ignore")
    head = data[:room].decode("utf-8", "ignore")
    return f"{head}\n{_marker(len(data) - len(head.encode('utf-8')), setting)}"


def cut_tail(text: str, limit: int, setting: str = "MAX_ERROR_BYTES") -> str:
    """A marker and the last bytes of ``text`` (whole characters), at most ``limit`` UTF-8 bytes in all."""
    if len(text) * 4 <= limit:
        return text
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(_marker(len(data), setting).encode("utf-8")) - 1
    if room <= 0:
        return data[len(data) - limit:].decode("utf-8", "ignore")
    tail = data[len(data) - room:].decode("utf-8", "ignore")
    return f"{_marker(len(data) - len(tail.encode('utf-8')), setting)}\n{tail}"


def max_result_bytes() -> int:
    return get_settings().max_result_bytes


def max_error_bytes() -> int:
    return get_settings().max_error_bytes


def result_text(value: str, limit: int | None = None) -> str:
    """A job's result as stored: cleaned, then cut to ``limit`` (MAX_RESULT_BYTES) keeping its head."""
    return cut_head(clean(value), max_result_bytes() if limit is None else limit)


def error_text(value: str, limit: int | None = None) -> str:
    """An error or traceback as stored: cleaned, then cut to ``limit`` (MAX_ERROR_BYTES) keeping its tail."""
    return cut_tail(clean(value), max_error_bytes() if limit is None else limit)
