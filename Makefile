# caramba: `make install`, `make run`, `make test`. Everything lives in ./.venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test bench clean brainstorm

$(BIN)/caramba: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: on CPU machines this takes the local CPU wheel, never a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/caramba

install: $(BIN)/caramba

run: install
	$(BIN)/caramba run manifests/standard_transformer.yml

# the research team's interactive session: needs llm.model in caramba.yml, or MODEL=<litellm model> [API_BASE=url]
brainstorm: install
	$(BIN)/caramba run manifests/brainstorm.yml $(if $(MODEL),--set targets[0].process.model=$(MODEL)) $(if $(API_BASE),--set targets[0].process.api_base=$(API_BASE))

test: install
	$(BIN)/pytest -n 2 tests

clean:
	rm -rf $(VENV) runs .caramba
