"""Reports' JSON is safe to paste into a page: the same value, none of ``<``, ``>``, ``&``."""

from __future__ import annotations

import json

from logstream.reports.page_safe_json import dumps
from tests.include.reports.hostile import HOSTILE


def test_the_same_value_without_markup_characters():
    value = {"services": [*HOSTILE, "a&b", "café ✓"], "<key>": 1, "n": [1.5, None, True]}
    text = dumps(value)
    assert json.loads(text) == value
    assert not {"<", ">", "&"} & set(text)
    assert "\\u003c/script\\u003e" in text and "\\u0026" in text
    assert text.isascii()


def test_indent_is_kept():
    assert dumps({"a": 1}) == '{\n  "a": 1\n}'
    assert dumps({"a": "<"}, indent=None) == '{"a": "\\u003c"}'
