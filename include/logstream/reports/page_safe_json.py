"""JSON that is safe to paste into an HTML page as it is.

Reports are JSON files that a page may embed (``<script type="application/json">``, a data
attribute): a value from the logs holding ``</script>`` would end such an element early. Writing
``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026`` (and every non-ASCII character as
``\\uXXXX``, json's default) gives the same JSON value with none of those characters in the text.
"""

from __future__ import annotations

import json
from typing import Any

_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def dumps(value: Any, indent: int | None = 2) -> str:
    """``json.dumps(value)`` without ``<``, ``>`` or ``&`` in the text (they occur only inside
    JSON strings, where the escapes mean the same characters)."""
    text = json.dumps(value, indent=indent, ensure_ascii=True)
    for char, escape in _UNSAFE.items():
        text = text.replace(char, escape)
    return text
