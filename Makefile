# Everything builds .venv from uv.lock on first use; uv itself is installed with pip if absent.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced
# the library and the extras the service and the tests need (pyproject.toml lists them)
EXTRAS := --extra service --extra temporal

.PHONY: demo test lint format notebook bench up clean

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet uv

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen $(EXTRAS) --python $(PYTHON)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/protocol-lab demo

test: $(STAMP)
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m protocol_lab._client._unasync --check

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

notebook: $(STAMP)
	$(VENV)/bin/jupyter-execute notebooks/*.ipynb

bench: $(STAMP)
	$(UV) sync --frozen $(EXTRAS) --group bench
	$(VENV)/bin/python benchmarks/api_throughput.py
	$(VENV)/bin/python benchmarks/analytics_vs_pm4py.py
	$(VENV)/bin/python benchmarks/sim_vs_ciw.py

up: $(STAMP)
	$(VENV)/bin/protocol-lab up

clean:
	rm -rf $(VENV) out .protocol-lab
