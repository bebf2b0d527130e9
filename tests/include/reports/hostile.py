"""Hostile log content and a check that an HTML page shows it as text, never as markup.

Log lines are attacker-controlled: a service, path, user agent or user id can hold HTML. A page
that shows them must escape them. :func:`assert_shown_as_text` parses the page with
``html.parser`` (as a browser tokenizes it) and fails if any element, attribute or script/style
content came from the data, while each value that should be shown is in the page's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser

#: Every payload calls ``alert(``: markup that carries it came from the data.
MARKER = "alert("
HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "</style><script>alert(2)</script>",
    "'><svg onload=alert(3)>",
)
#: Attributes a browser follows as a URL.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}


class _Scan(HTMLParser):
    """Every element with its attributes, the text, and the content of script/style elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.raw_content: list[tuple[str, str]] = []  # (script|style, content)
        self._raw: str | None = None

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))
        if tag in ("script", "style"):
            self._raw = tag

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, attrs))

    def handle_endtag(self, tag):
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data):
        if self._raw is not None:
            self.raw_content.append((self._raw, data))
        else:
            self.text.append(data)


def assert_shown_as_text(
    page: str, shown: Iterable[str] = HOSTILE, *, own_scripts: bool = False
) -> str:
    """Fail if the page holds markup from the data; returns the page's visible text.

    ``shown``: values that must be visible (as text, unescaped by the parser). ``own_scripts``:
    the page has scripts of its own (a Data Docs page); then only scripts, images and event
    handlers carrying :data:`MARKER` count as coming from the data.
    """
    scan = _Scan()
    scan.feed(page)
    scan.close()
    for tag, attrs in scan.elements:
        values = dict(attrs)
        if not own_scripts:
            assert tag not in ("script", "img"), f"<{tag} {attrs}> in a page without any"
        if tag == "img":
            assert values.get("src") != "x", f"an <img> from the data: {attrs}"
        for name, value in attrs:
            value = value or ""
            assert not (name.startswith("on") and (MARKER in value or not own_scripts)), (
                f"event handler {name}={value!r} on <{tag}>"
            )
            assert not (
                name in URL_ATTRIBUTES and value.strip().lower().startswith("javascript:")
            ), f"javascript: URL in {name} of <{tag}>"
            assert MARKER not in name, f"attribute name from the data on <{tag}>: {name!r}"
    for kind, content in scan.raw_content:
        assert MARKER not in content, f"data inside a <{kind}> element: {content[:200]!r}"
    for value in HOSTILE:
        if any(c in value for c in "<>\"'"):
            assert value not in page, f"{value!r} is in the page unescaped"
    text = "".join(scan.text)
    for value in shown:
        assert value in text, f"{value!r} is not shown as text"
    return text
