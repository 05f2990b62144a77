# PowerView — every command an operator or a developer needs, from a fresh clone.
VENV    ?= envs/powerview
PYTHON  ?= python3
PY      := $(VENV)/bin/python

.PHONY: venv demo test check system-deps bench lint clean acceptance

# (recipes print on stderr: `make demo` keeps stdout for the JSON report)
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "setting up the virtualenv $(VENV)" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(VENV)/bin/pip install --quiet --upgrade pip >&2
	@# requirements.txt ends with `-e .`: the project, editable, from this folder (the operators' command)
	@$(VENV)/bin/pip install --quiet -r requirements-dev.txt >&2
	@touch $@

venv: $(VENV)/.installed  ## create the virtualenv the hook and the operator docs use

demo: venv  ## dry run of the parser on the shipped sample files (no server needed)
	@# exit 1 is expected: one sample (an MV_T202_V002 file) must be rejected
	@$(PY) tsv_parser.py --dataFolder examples/data --dry-run; code=$$?; \
	  echo "tsv_parser.py exit code: $$code (1 expected: the MV_T202_V002 sample is rejected)" >&2; \
	  [ $$code -eq 0 ] || [ $$code -eq 1 ]

# root runs apt-get itself; another user goes through sudo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-deps:  ## Debian packages the test suite needs (real InfluxDB 1.x, VictoriaMetrics, shellcheck)
	[ -n "$$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || $(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  python3-venv make influxdb victoria-metrics shellcheck docker-compose

# the suite runs on every core, plus one worker (pytest-xdist): a quarter of a worker's time is
# spent waiting on the processes it starts (hook, worker, parser, ansible-playbook), which a third
# worker fills on 2 cores; each worker starts its own servers on free ports; a module's tests stay
# on one worker (their module-scoped fixtures are built once)
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: venv  ## the test suite (tests needing a missing server are skipped)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

check: system-deps lint  ## everything, as CI runs it: lint, type check, servers required, no skip allowed
	POWERVIEW_REQUIRE_SERVERS=1 $(MAKE) test

bench: venv  ## throughput, start-up and peak memory of the parser, cost of the derived buckets (figures in docs/)
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_derived.py  # derived buckets vs raw ingestion (docs/buckets-derives.md)
	$(PY) bench/bench_countback.py  # one count query per written file (docs/utilisation-parseur.md)
	$(PY) bench/bench_startup.py  # imports of tsv_parser.py --help and of a run (docs/utilisation-parseur.md)

lint: venv  ## shellcheck, ruff (lint and format) and mypy, all clean
	shellcheck on-upload.sh setup.sh .ci/run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache

# run it as the owner of the data folder (as SFTPGo runs the hook): runuser -u sftpgo -- make acceptance
acceptance:  ## acceptance check of the deployment named by .env (docs/acceptance.md): a test company, created then removed
	@[ -x $(PY) ] || { echo "no virtualenv $(VENV): run make venv first" >&2; exit 2; }
	$(PY) -m powerview.cli.acceptance --project $(CURDIR) $(ACCEPTANCE_ARGS)
