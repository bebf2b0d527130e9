# logstream developer entrypoints. Two that matter:
#   make run   - bootstrap if needed, start Kafka + local Airflow, print where to look
#   make test  - bootstrap if needed, lint, run the whole test suite
SHELL := /bin/bash
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: setup system venv jars test test-cluster cluster cluster-down lint format run down lock clean bench \
	bench-hostile bench-live

setup: system venv jars

# the Debian packages of apt-packages.txt (servers the tests start on loopback); installed once
system:
	@missing=$$(grep -v '^#' apt-packages.txt | xargs -r -n1 sh -c 'dpkg -s "$$0" >/dev/null 2>&1 || echo "$$0"'); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing; install them as root: apt-get install $$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# the venv is rebuilt from the committed lock whenever the lock changes
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python python3
	@touch $@

venv: $(VENV)/.synced

jars: venv
	$(BIN)/logstream jars fetch

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

# the cluster suite (tests/cluster, marker cluster): on loopback, a Spark standalone cluster (a
# master, two workers), YARN (a ResourceManager, a NodeManager), HDFS, S3 (s3proxy) and a Celery
# Airflow on Postgres; the streaming job supervised through driver, worker and master failures
# and the batch jobs on the cluster, with HDFS and with S3; see README for its time
test-cluster: setup
	$(BIN)/pytest -m cluster tests/cluster $(PYTEST_ARGS)

# a Spark standalone cluster on loopback (master + two workers) under .local/spark-cluster
cluster: setup
	$(BIN)/logstream cluster up

cluster-down: venv
	$(BIN)/logstream cluster down

# streaming catch-up throughput against the tutorial's design (docs/BENCHMARKS.md), e.g.
# make bench BENCH_ARGS="--repeat 2 --out bench/results/stream_2m.md"
bench: setup
	$(BIN)/python bench/stream_throughput.py $(BENCH_ARGS)

# hostile input (100 KB near-misses, binary garbage) against every format: cost per MB vs
# ordinary lines in the same run, budget 10x (no catastrophic backtracking)
bench-hostile: setup
	$(BIN)/python bench/parse_hostile.py $(BENCH_ARGS)

# live latency at steady rates, driver memory and recovery (docs/BENCHMARKS.md, issue 16), e.g.
# make bench-live BENCH_ARGS="--quick"   or   BENCH_ARGS="--rates 2000,5000,10000 --out FILE"
bench-live: setup
	$(BIN)/python bench/live_latency.py $(BENCH_ARGS)

# the demo profile (deploy/demo/logstream.yaml: 30 s watermark delays) unless LOGSTREAM_CONFIG is set
run: setup
	LOGSTREAM_CONFIG="$${LOGSTREAM_CONFIG:-$(CURDIR)/deploy/demo/logstream.yaml}" $(BIN)/logstream up

down: venv
	$(BIN)/logstream down

# re-resolve after editing pyproject.toml; commit uv.lock and requirements.txt
lock: | $(UV)
	$(UV) lock
	$(UV) export --frozen --no-hashes --no-dev --no-emit-project -o requirements.txt

clean:
	rm -rf $(VENV) $(TOOLS) .cache .local
