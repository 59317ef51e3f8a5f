# The two set-up commands of the README: `make demo` and `make test`.
# Each creates or reuses .venv and installs from this project's own files.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv bench compat fuzz soak db-outage clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,postgres]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/hybrid-agent demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check hybrid_agent tests bench examples

bench: $(STAMP)
	$(BIN)/python -m bench

# Third-party Realtime clients (openai SDK, openai-agents, pipecat) at their defaults through
# `serve --upstream sim`; each framework in its own pinned venv under bench/compat/.venvs.
compat: $(STAMP)
	$(BIN)/python -m bench.compat.run

# A million hostile frames through the real socket of `serve` (figures printed; exit 1 on a crash or a leak).
fuzz: $(STAMP)
	$(BIN)/python -m bench.fuzz --frames 1000000

# 30 minutes of paced calls through one `serve` (SOAK_CALLS: what `bench capacity` measured here); RSS,
# descriptors, threads and open calls sampled between waves (exit 1 past the bounds; docs/reliability.md).
SOAK_CALLS ?= 60
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes 30 --calls $(SOAK_CALLS)

# The audit database stopped for DB_OUTAGE_SECONDS under DB_OUTAGE_CALLS paced calls, between two identical
# runs without the outage (bench/db_outage.py; a PostgreSQL cluster of its own on a free port, never 5432):
# records lost or duplicated, the spool's order, /healthz and /readyz every 0.5 s, audio p50/p99 side by side.
# Exit 1 on a lost or duplicated record, a spool out of order or a health endpoint that lied; not in `make test`.
DB_OUTAGE_CALLS ?= 50
DB_OUTAGE_SECONDS ?= 60
DB_OUTAGE_CALL_SECONDS ?=
db-outage: $(STAMP)
	$(BIN)/python -m bench db-outage --calls $(DB_OUTAGE_CALLS) --outage-seconds $(DB_OUTAGE_SECONDS) \
		$(if $(DB_OUTAGE_CALL_SECONDS),--call-seconds $(DB_OUTAGE_CALL_SECONDS))

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
