"""The ledger of landed units and a run's counts, over hand-written commit records."""

from __future__ import annotations

from datetime import date

from logstream.batch.backfill_ledger import BackfillSummary, Ledger, file_key
from logstream.batch.backfill_request import BackfillRequest
from logstream.storage.fs import FileStatus

D = date.fromisoformat


def status(name: str, size: int = 100, modified_ms: int = 1_000) -> FileStatus:
    return FileStatus(f"file:/archive/{name}", f"file:/archive/{name}", size, modified_ms)


def test_file_key_changes_with_uri_size_or_modification_time():
    key = file_key(status("a.log"))
    assert len(key) == 32 and int(key, 16) >= 0
    assert file_key(status("a.log")) == key
    others = {file_key(status("b.log")), file_key(status("a.log", size=101))}
    others.add(file_key(status("a.log", modified_ms=1_001)))
    assert len(others) == 3 and key not in others


# -- the ledger and the summary --------------------------------------------------------------------

A, B = status("a.log", 300, 5), status("b.log", 200, 7)


def entry(file: FileStatus, lines: int, days: dict, quarantined, complete: bool) -> dict:
    return {
        "key": file_key(file),
        "uri": file.uri,
        "size": file.size,
        "modified_ms": file.modified_ms,
        "lines": lines,
        "days": days,
        "quarantined": quarantined,
        "complete": complete,
    }


def test_ledger_merges_commits_in_order():
    records = [
        # out of order on purpose: the ledger applies them by commit id
        {"commit": "2", "files": [entry(A, 10, {"2015-12-23": 4}, None, True)]},
        {
            "commit": "1",
            "files": [
                entry(A, 10, {"2015-12-22": 3}, 3, False),
                entry(B, 6, {"2015-05-17": 6}, 0, True),
            ],
        },
    ]
    ledger = Ledger(records)
    a = ledger.get(A)
    assert a is not None
    assert a.days == {D("2015-12-22"): 3, D("2015-12-23"): 4}
    assert (a.lines, a.quarantined, a.complete) == (10, 3, True)
    assert ledger.get(B).days == {D("2015-05-17"): 6}
    assert ledger.get(status("c.log")) is None
    # the same URI with another size is a changed file; an unknown URI is not
    assert ledger.changed(status("a.log", 301, 5)) is a
    assert ledger.changed(A) is None
    assert ledger.changed(status("c.log")) is None


def test_summary_counts_a_landed_file_from_the_ledger():
    ledger = Ledger(
        [{"commit": "1", "files": [entry(A, 10, {"2015-12-22": 3, "2015-12-23": 4}, 3, True)]}]
    )
    summary = BackfillSummary(files=1)
    summary.add_landed_file(ledger.get(A), BackfillRequest("/x", end_date=D("2015-12-22")))
    assert summary.as_dict() == {
        "files": 1,
        "files_already_landed": 1,
        "changed_files": [],
        "lines": 10,
        "events_landed": 0,
        "quarantined": 0,
        "skipped_already_landed": 6,  # 3 events of 12-22 + 3 quarantined lines
        "skipped_out_of_range": 4,
        "days_touched": ["2015-12-22"],
        "days_landed": [],
        "commits": 0,
        "first_day": "2015-12-22",
        "last_day": "2015-12-22",
    }
