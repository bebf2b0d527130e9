"""The console in the Airflow UI: a FastAPI app the API server mounts (``plugins/``).

It reads the Parquet tables with pyarrow (one day's partition folders, only the columns a page
shows, aggregated with ``pyarrow.compute``), the status and supervisor files, and the report files
under ``reports_dir``. Every page has a JSON twin; both sit behind Airflow's authentication.

| module | what it answers |
| --- | --- |
| ``tables`` | where a table's day is, how to read its columns (no Spark), what was read (kept) |
| ``health`` | pipeline health: queries, lag, batch duration, watermark, restarts |
| ``windows`` | final and live metric windows per service |
| ``findings`` | anomalies with evidence, quarantine by reason, late data per service |
| ``reports`` | reconciliation, latency and quality reports, and the report files |
| ``warm`` | keeping today's and yesterday's reads warm while the console is in use |
| ``html`` | escaping, the page frame, tables and SVG charts |
| ``pages`` | each page's HTML from its data |
| ``app`` | the routes, the authentication, the FastAPI app |
"""
