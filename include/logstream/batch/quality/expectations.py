"""The Great Expectations expectations of one table suite, built from its :class:`TableCheck`
and the table's declared schema.

* **schema**: the set of column names and each column's type;
* **keys**: identifying columns never null and unique together;
* **ranges**: declared bounds and value sets, and one row-consistency query per table naming the
  orderings each bad row breaks (p50 <= p95 <= p99 <= max, min <= avg <= max, parts <= totals);
* **day bounds** and **freshness**: against the run-time parameters ``$day_start``/``$day_end``
  and ``$fresh_since`` (see :func:`logstream.batch.quality.plan.expectation_parameters`).

``great_expectations`` is imported when an expectation is built, not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import types as T

from logstream.batch.quality.checks import TableCheck

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

#: Relative tolerance for min <= avg <= max: a mean of doubles can exceed the max by rounding.
MEAN_TOLERANCE = 1e-9


def _expect():
    from great_expectations import expectations

    return expectations


def select_where(columns: Sequence[str], condition: str) -> str:
    """An UnexpectedRowsExpectation query over the batch; names come from our own schemas."""
    return f"SELECT {', '.join(columns)} FROM {{batch}} WHERE {condition}"  # noqa: S608


def _not_null_and_unique(check: TableCheck) -> list[Expectation]:
    expect = _expect()
    columns = list(dict.fromkeys([*check.keys, *check.not_null]))
    found: list[Expectation] = [expect.ExpectColumnValuesToNotBeNull(column=c) for c in columns]
    if len(check.keys) == 1:
        found.append(expect.ExpectColumnValuesToBeUnique(column=check.keys[0]))
    else:
        found.append(expect.ExpectCompoundColumnsToBeUnique(column_list=list(check.keys)))
    return found


def consistency_rules(check: TableCheck, columns: set[str]) -> list[tuple[str, str]]:
    """(name, Spark SQL condition) of every ordering between a table's columns.

    A condition is NULL (not violated) when a value it needs is missing. A mean may exceed its
    maximum by rounding, so mean bounds allow :data:`MEAN_TOLERANCE` relative slack.
    """
    rules = []
    if {"window_start", "window_end"} <= columns:
        rules.append(("window_start < window_end", "window_end > window_start"))
    if check.family is None:
        return rules
    for larger, smaller in check.family.orderings:
        rules.append((f"{smaller} <= {larger}", f"{larger} >= {smaller}"))
    for low, mean, high in check.family.mean_bounds:
        rules.append((f"{low} <= {mean}", f"{mean} >= {low} - {MEAN_TOLERANCE} * abs({low})"))
        rules.append((f"{mean} <= {high}", f"{mean} <= {high} + {MEAN_TOLERANCE} * abs({high})"))
    return rules


def _violations(rules: Sequence[tuple[str, str]]) -> str:
    """A ``violated`` column naming the rules a row breaks."""
    cases = ", ".join(f"CASE WHEN NOT ({condition}) THEN '{name}' END" for name, condition in rules)
    return f"concat_ws('; ', {cases}) AS violated"


def _metric_rules(check: TableCheck) -> list[Expectation]:
    """Each metric column's declared bounds and value set."""
    expect = _expect()
    found: list[Expectation] = []
    for metric in check.family.metrics if check.family else ():
        if metric.bounded:
            bounds = {"min_value": metric.low, "max_value": metric.high}
            found.append(
                expect.ExpectColumnValuesToBeBetween(
                    column=metric.name, **{k: v for k, v in bounds.items() if v is not None}
                )
            )
        if metric.values is not None:
            found.append(
                expect.ExpectColumnValuesToBeInSet(
                    column=metric.name, value_set=list(metric.values)
                )
            )
    return found


def _consistency(check: TableCheck, schema: T.StructType) -> list[Expectation]:
    rules = consistency_rules(check, set(schema.names))
    if not rules:
        return []
    return [
        _expect().UnexpectedRowsExpectation(
            unexpected_rows_query=select_where(
                [*check.keys, _violations(rules)],
                " OR ".join(f"NOT ({condition})" for _, condition in rules),
            ),
            description="row consistency: " + "; ".join(name for name, _ in rules),
        )
    ]


def table_expectations(check: TableCheck, schema: T.StructType) -> list[Expectation]:
    """The expectations of one table suite, given the table's declared schema."""
    expect = _expect()
    # the set, not the order: Parquet readers select columns by name
    found: list[Expectation] = [
        expect.ExpectTableColumnsToMatchSet(column_set=schema.names, exact_match=True)
    ]
    found += [
        expect.ExpectColumnValuesToBeOfType(column=f.name, type_=type(f.dataType).__name__)
        for f in schema.fields
    ]
    if check.required:
        found.append(expect.ExpectTableRowCountToBeBetween(min_value=1))
    found += _not_null_and_unique(check)
    for column, low, high in check.ranges:
        found.append(
            expect.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
        )
    for column, values in check.value_sets:
        if column in schema.names:
            found.append(expect.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
    found += _metric_rules(check)
    found += _consistency(check, schema)
    if check.in_day_column:
        found.append(
            expect.ExpectColumnValuesToBeBetween(
                column=check.in_day_column,
                min_value={"$PARAMETER": "day_start"},
                max_value={"$PARAMETER": "day_end"},
                strict_max=True,
                description=f"every {check.in_day_column} lies in the day being checked (UTC)",
            )
        )
    if check.fresh_column:
        found.append(
            expect.ExpectColumnMaxToBeBetween(
                column=check.fresh_column,
                min_value={"$PARAMETER": "fresh_since"},
                description=(
                    f"freshness: the newest {check.fresh_column} is at or after $fresh_since"
                ),
            )
        )
    return found
