"""The Great Expectations context and its Data Docs site under ``<reports_dir>/data_docs``.

The context is ephemeral (the suites are built in code, nothing is kept in a GX project) with one
site: its index lists the latest run's validations; each run's pages stay until
:data:`DOCS_KEEP_DAYS` have passed. GX renders into a local folder: the site itself when
``reports_dir`` is local, else a temporary folder whose pages :class:`DocsSite` then copies to the
shared ``reports_dir`` (``hdfs://``, ``s3a://``), with the links pointed there.

Sample values come from the logs, which attackers write. GX 1.x renders its page templates
(``*.j2``) with Jinja autoescape off and HTML-escapes only string-template parameters, so the
unexpected-values table gets each sampled value as raw HTML. :func:`escape_samples` HTML-escapes
those values in the stored validation results before the site is rendered; the verdict keeps
the values as they are (it is JSON, and whoever shows it escapes).
"""

from __future__ import annotations

import html
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logstream.batch.quality.result import SuiteResult
from logstream.config import Settings
from logstream.storage.fs import Storage, join, local_path, parse_location

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

#: The Data Docs site name in the GX context.
DOCS_SITE = "logstream"
#: Data Docs pages of runs older than this are deleted when a new run builds the site.
DOCS_KEEP_DAYS = 30
#: Result fields whose values GX pastes into the page unescaped (the unexpected-values table).
RAW_RENDERED_FIELDS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
)


def docs_dir(settings: Settings) -> Path | str:
    """The Data Docs site: a local folder as a Path, a shared one as its URI."""
    local = local_path(str(settings.reports_dir))
    if local is None:
        parse_location(settings.reports_dir)  # a scheme Python cannot reach is a ConfigError
        return join(settings.reports_dir, "data_docs")
    return local / "data_docs"


@dataclass
class DocsSite:
    """Where GX renders (``local_dir``) and, for a shared site, where the pages go (``target``,
    through ``storage``)."""

    local_dir: Path
    target: str = ""
    storage: Storage | None = None

    def publish(self, index: str, results: Sequence[SuiteResult]) -> str:
        """Copy a shared site's pages to ``target``, prune its old pages and point the index
        and each result's page there; the index URL (unchanged for a local site)."""
        if not self.target or self.storage is None:
            return index
        self.storage.put_tree(self.local_dir, self.target)
        prune_docs(self.target, storage=self.storage)
        staged = self.local_dir.as_uri()

        def moved(url: str) -> str:
            return self.target + url.removeprefix(staged) if url.startswith(staged) else url

        for result in results:
            result.docs_page = moved(result.docs_page)
        return moved(index)


@contextmanager
def docs_site(settings: Settings) -> Iterator[DocsSite]:
    """The site of ``settings``: rendered in place when local, else in a temporary folder that
    is removed afterwards (:meth:`DocsSite.publish` copies it first)."""
    target = docs_dir(settings)
    if isinstance(target, Path):
        yield DocsSite(target)
        return
    with tempfile.TemporaryDirectory(prefix="logstream-data-docs-") as staging:
        yield DocsSite(Path(staging), target, Storage(settings))


def docs_context(site_dir: Path) -> AbstractDataContext:
    """An ephemeral GX context whose one Data Docs site is the folder ``site_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def build_site(context: AbstractDataContext, site_dir: Path, results: Sequence[SuiteResult]) -> str:
    """Render the site from the context's validations (sample values escaped), set each result's
    ``docs_page``, prune old pages; returns the index URL."""
    escape_samples(context)
    index = context.build_data_docs(site_names=[DOCS_SITE])[DOCS_SITE]
    pages = {}
    for key in context.validation_results_store.list_keys():
        urls = context.get_docs_sites_urls(resource_identifier=key, site_name=DOCS_SITE)
        if urls and urls[0].get("site_url"):
            pages[key.expectation_suite_identifier.name] = urls[0]["site_url"]
    for result in results:
        result.docs_page = pages.get(result.suite.replace("/", "."), "")
    prune_docs(site_dir)
    return index


def escape_samples(context: AbstractDataContext) -> int:
    """HTML-escape the sampled values (:data:`RAW_RENDERED_FIELDS`) of every stored validation
    result, in the store only; returns how many results were rewritten."""
    store = context.validation_results_store
    rewritten = 0
    for key in store.list_keys():
        validation = store.get(key)
        changed = False
        for outcome in validation.results:
            result = outcome.result or {}
            for name in RAW_RENDERED_FIELDS:
                if result.get(name):
                    result[name] = _escaped(result[name])
                    changed = True
        if changed:
            store.set(key, validation)
            rewritten += 1
    return rewritten


def _escaped(value: Any) -> Any:
    """Every string in ``value`` HTML-escaped (dict keys, our column names, are kept)."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(item) for item in value]
    return value


def prune_docs(
    site_dir: Path | str,
    keep_days: int = DOCS_KEEP_DAYS,
    now: float | None = None,
    storage: Storage | None = None,
) -> int:
    """Delete validation pages older than ``keep_days`` (a local site, or a shared one through
    ``storage``); returns how many files went."""
    cutoff = (now or time.time()) - keep_days * 86_400
    if isinstance(site_dir, str) and storage is not None:
        old = [e for e in storage.walk(join(site_dir, "validations")) if e.modified < cutoff]
        for entry in old:
            storage.delete(entry.location, recursive=False)
        return len(old)
    removed = 0
    root = Path(site_dir) / "validations"
    if not root.exists():
        return 0
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder) / name
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        if folder != str(root) and not os.listdir(folder):
            os.rmdir(folder)
    return removed
