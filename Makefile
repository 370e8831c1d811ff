# Veche: `make run` brings up the whole stack, `make test` runs every test.
# Both set up what is missing first (virtualenv, packages) on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every installable package of the monorepo; services join as they land.
PACKAGES := $(patsubst %/pyproject.toml,%,$(wildcard libs/*/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml))
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean

install: $(STAMP)

$(STAMP): requirements-dev.txt $(addsuffix /pyproject.toml,$(PACKAGES)) $(wildcard gateway/graphiql/package-lock.json)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	bash gateway/graphiql/build.sh
	touch $@

run: install
	$(BIN)/python -m veche_stack

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every benchmark script beside a package's code (services/*/bench, gateway/bench).
BENCHES := $(wildcard services/*/bench/bench_*.py gateway/bench/bench_*.py bench/bench_*.py)

bench: install
	@test -n "$(BENCHES)" || { echo "no benchmarks yet"; exit 0; }
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
