# caramba: `make install`, `make run`, `make test`. Everything lives in ./.venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test bench clean brainstorm paper

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

# the upcycling study (teacher → DBA student, verify, benchmarks, paper artifacts; ~15 min on CPU).
# SMOKE=1 runs the 1-minute version the tests use.
PAPER_SET := $(if $(SMOKE),--set vars.teacher_steps=30 --set vars.block_steps=8 --set vars.global_steps=8 --set vars.ppl_batches=2 --set vars.timed_runs=1 --set vars.max_seq=256)
paper: install
	$(BIN)/caramba run manifests/dba_upcycle.yml --target teacher $(PAPER_SET)
	$(BIN)/caramba run manifests/dba_upcycle.yml --target upcycle $(PAPER_SET)

test: install
	$(BIN)/pytest -n 2 tests

clean:
	rm -rf $(VENV) runs .caramba
