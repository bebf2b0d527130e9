"""Each channel's message, built from hand-written alerts with hostile and oversized text; the
expected strings are written out by hand."""

from __future__ import annotations

import email
import email.policy

from logstream.alerts.messages import email_message, one_line, slack_payload, webhook_payload
from logstream.alerts.model import Alert

HOSTILE = Alert(
    dedup_key="anomaly:<@U1>",
    kind="x<y",
    severity="critical",
    summary="<!channel> pay <https://evil.example|here> & run",
    details={"<k>": "a&b"},
    links={"run": "https://airflow.local/r", "note": "<b>", "empty": ""},
    created_at="2026-01-01T00:02:00+00:00",
)


def test_slack_escapes_the_alert_text_so_it_cannot_mention_or_link():
    payload = slack_payload(HOSTILE)

    assert payload["text"] == (
        ":rotating_light: CRITICAL: "
        "&lt;!channel&gt; pay &lt;https://evil.example|here&gt; &amp; run"
    )
    header, fields, links, context = payload["blocks"]
    assert header["text"]["text"] == (
        ":rotating_light: *CRITICAL* `x&lt;y`\n"
        "&lt;!channel&gt; pay &lt;https://evil.example|here&gt; &amp; run"
    )
    assert fields["fields"] == [{"type": "mrkdwn", "text": "*&lt;k&gt;*\na&amp;b"}]
    # a URL becomes a link, other values are escaped text, empty ones are left out
    assert links["text"]["text"] == "<https://airflow.local/r|run> · *note*: &lt;b&gt;"
    assert context["elements"][0]["text"] == (
        "logstream · dedup key `anomaly:&lt;@U1&gt;` · 2026-01-01T00:02:00+00:00"
    )


def test_slack_notification_text_is_one_bounded_line():
    summary = "line one\n\tline two " + "x" * 300
    alert = Alert("k", "latency", "warning", summary, created_at="2026-01-01T00:00:00+00:00")

    text = slack_payload(alert)["text"]

    expected_summary = "line one line two " + "x" * 181 + "…"  # 200 characters
    assert len(expected_summary) == 200
    assert text == f":warning: WARNING: {expected_summary}"


def test_slack_shows_ten_details_each_cut_to_the_field_limit():
    details = {f"d{n}": "v" * 5_000 for n in range(12)}
    alert = Alert("k", "kind", "info", "s", details=details)

    fields = slack_payload(alert)["blocks"][1]["fields"]

    assert [field["text"].split("\n")[0] for field in fields] == [f"*d{n}*" for n in range(10)]
    assert {len(field["text"]) for field in fields} == {1_900}
    assert all(field["text"].endswith("v…") for field in fields)


def test_unknown_severity_gets_a_bell_and_its_own_name():
    alert = Alert("k", "kind", "page", "summary")
    assert alert.severity_label == "PAGE"
    assert slack_payload(alert)["text"] == ":bell: PAGE: summary"


def test_webhook_payload_is_the_alert_tagged_with_its_source():
    assert webhook_payload(HOSTILE) == {
        "source": "logstream",
        "dedup_key": "anomaly:<@U1>",
        "kind": "x<y",
        "severity": "critical",
        "summary": "<!channel> pay <https://evil.example|here> & run",
        "details": {"<k>": "a&b"},
        "links": {"run": "https://airflow.local/r", "note": "<b>", "empty": ""},
        "created_at": "2026-01-01T00:02:00+00:00",
        "service": "",
    }


def test_email_subject_stays_on_one_line_and_the_body_lists_details_and_links():
    summary = "disk full\non /data " + "y" * 300
    alert = Alert(
        "pipeline:d:t:r",
        "pipeline_failure",
        "error",
        summary,
        details={"dag_id": "d"},
        links={"log": "http://airflow.local/log", "run": ""},
        created_at="2026-01-01T00:00:00+00:00",
    )

    message = email_message(alert, "from@example.com", ("a@example.com", "b@example.com"))

    subject = "[logstream][ERROR] disk full on /data " + "y" * 180 + "…"  # 200 after the tag
    assert message["Subject"] == subject
    # on the wire the subject is one header line, not folded onto an indented continuation line
    wire = message.as_string().split("\n")
    [at] = [n for n, line in enumerate(wire) if line.startswith("Subject: ")]
    assert not wire[at + 1].startswith((" ", "\t"))
    assert (
        email.message_from_string(message.as_string(), policy=email.policy.default)["Subject"]
        == subject
    )
    assert (message["From"], message["To"]) == ("from@example.com", "a@example.com, b@example.com")
    assert (message["X-Logstream-Dedup-Key"], message["X-Logstream-Severity"]) == (
        "pipeline:d:t:r",
        "error",
    )
    assert message.get_content() == (
        f"ERROR pipeline_failure\n\n{summary}\n\n"
        "Details\n  dag_id: d\n\n"
        "Links\n  log: http://airflow.local/log\n\n"
        "dedup key: pipeline:d:t:r\ncreated at: 2026-01-01T00:00:00+00:00\n"
    )


def test_one_line_collapses_whitespace_and_cuts_with_an_ellipsis():
    assert one_line("a\n  b\tc ", 10) == "a b c"
    assert one_line("abcdefghijk", 5) == "abcd…"
    assert one_line("abcde", 5) == "abcde"
