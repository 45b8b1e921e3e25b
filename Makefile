# Everything builds .venv from uv.lock on first use; uv itself is installed with pip if absent.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced
# the library and the extras the service and the tests need (pyproject.toml lists them)
EXTRAS := --extra service --extra temporal

.PHONY: compile demo test lint format notebook bench mutate up clean

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet uv

# Bytecode is compiled when installed, and the project's own before each run (compileall skips
# what is current): where PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile
# each module it imports from source, and the API or the worker spends about 3x the CPU starting.
$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode $(EXTRAS) --python $(PYTHON)
	touch $(STAMP)

compile: $(STAMP)
	$(VENV)/bin/python -m compileall -q protocol_lab service

demo: compile
	$(VENV)/bin/protocol-lab demo

test: compile
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m protocol_lab._client._unasync --check

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

notebook: compile
	$(VENV)/bin/jupyter-execute notebooks/*.ipynb

bench: compile
	$(UV) sync --frozen --compile-bytecode $(EXTRAS) --group bench
	$(VENV)/bin/python benchmarks/api_throughput.py
	$(VENV)/bin/python benchmarks/analytics_vs_pm4py.py
	$(VENV)/bin/python benchmarks/sim_vs_ciw.py

# Mutation testing of protocol_lab/domain and protocol_lab/analytics ([tool.mutmut] in
# pyproject.toml), in mutants/; long on two cores, so not part of `make test`. A second run goes
# on from where the first stopped. MUTANTS narrows it to some mutants by name, e.g.
# make mutate MUTANTS='protocol_lab.domain.rules.*'. Prints killed / total per module (a
# mutant that timed out counts as killed).
MUTANTS ?=
mutate: $(STAMP)
	$(UV) sync --frozen --compile-bytecode --inexact $(EXTRAS) --group mutation
	$(VENV)/bin/mutmut run $(MUTANTS)
	$(VENV)/bin/mutmut results --all true | awk -F': ' ' \
		{ m = $$1; sub(/^ +/, "", m); sub(/\.[^.]*$$/, "", m); n[m]++; t++ } \
		$$2 == "killed" || $$2 == "timeout" { k[m]++; kt++ } \
		$$2 == "survived" { s[m]++; st++ } \
		END { f = "%-36s %5d / %-5d killed %5.1f%%, %4d survived\n"; \
		      for (m in n) printf f, m, k[m], n[m], 100 * k[m] / n[m], s[m] | "sort"; \
		      close("sort"); if (t) printf f, "all", kt, t, 100 * kt / t, st }'

up: compile
	$(VENV)/bin/protocol-lab up

clean:
	rm -rf $(VENV) out .protocol-lab
