"""The Great Expectations context and its local Data Docs site under ``<reports_dir>/data_docs``.

The context is ephemeral (the suites are built in code, nothing is kept in a GX project) with one
local site: its index lists the latest run's validations; each run's pages stay on disk until
:data:`DOCS_KEEP_DAYS` have passed.

Sample values come from the logs, which attackers write. GX 1.x renders its page templates
(``*.j2``) with Jinja autoescape off and HTML-escapes only string-template parameters, so the
unexpected-values table gets each sampled value as raw HTML. :func:`escape_samples` HTML-escapes
those values in the stored validation results before the site is rendered; the verdict keeps
the values as they are (it is JSON, and whoever shows it escapes).
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logstream.batch.quality.result import SuiteResult
from logstream.config import Settings
from logstream.errors import ConfigError

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


def docs_dir(settings: Settings) -> Path:
    """The local Data Docs site; ``reports_dir`` must be a local folder."""
    reports = str(settings.reports_dir)
    if "://" in reports and not reports.startswith("file://"):
        raise ConfigError(
            f"reports_dir={reports!r} is not a local folder; Data Docs and quality results are "
            "written locally: set LOGSTREAM_REPORTS_DIR to a local path"
        )
    return Path(reports.removeprefix("file://")) / "data_docs"


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


def prune_docs(site_dir: Path, keep_days: int = DOCS_KEEP_DAYS, now: float | None = None) -> int:
    """Delete validation pages older than ``keep_days``; returns how many files went."""
    cutoff = (now or time.time()) - keep_days * 86_400
    removed = 0
    root = site_dir / "validations"
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
