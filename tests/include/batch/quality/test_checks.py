"""What each table suite checks and the suite groups, against the declarations read by hand."""

from __future__ import annotations

from logstream.batch.quality.checks import REQUEST_COUNTS_CHECK, suite_groups, table_checks


def test_event_table_checks(settings):
    checks = table_checks(settings)
    events = checks["events"]
    assert (events.date_column, events.keys) == ("event_date", ("event_id",))
    assert events.required and events.fresh_column == "processing_time"
    assert events.in_day_column == "event_time"
    quarantine = checks["quarantine"]
    assert quarantine.keys == ("kafka_topic", "kafka_partition", "kafka_offset")
    assert quarantine.fresh_column is None and not quarantine.required


def test_metric_table_and_its_reconciled_twin(settings):
    checks = table_checks(settings)
    streamed, reconciled = checks["response_time"], checks["reconciled/response_time"]
    for check in (streamed, reconciled):
        assert check.date_column == "window_date"
        assert check.keys == ("window_start", "service")
        assert check.required and check.in_day_column == "window_start"
        assert check.family is not None and check.family.name == "response_time"
    # only the streamed table must be fresh: the nightly replay runs after the day is over
    assert (streamed.fresh_column, reconciled.fresh_column) == ("window_end", None)
    # a family keyed on an optional column may have no rows on a day with events
    assert not checks["user_activity"].required and checks["user_activity"].fresh_column is None
    # the user-events stream may be quiet on a day with web events
    assert not checks["user_event_counts"].required


def test_suite_groups(settings):
    groups = suite_groups(settings)
    assert groups["streamed"][:6] == [
        "events",
        "user_events",
        "late_events",
        "late_user_events",
        "quarantine",
        "anomalies",
    ]
    assert len(groups["streamed"]) == 6 + 12
    assert len(groups["reconciled"]) == 12 + 1
    assert groups["reconciled"][-1] == REQUEST_COUNTS_CHECK == "cross/request_counts"
    assert groups["all"] == groups["streamed"] + groups["reconciled"]
