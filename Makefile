# Fresh machine: `make test` or `make study`. torch is pinned here (the wheels lie on this machine's disk);
# pyproject.toml declares ranges so other machines keep their own torch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
DECATHLON ?= ../shared/decathlon

.PHONY: install data test bench clean-cache

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

data: install
	$(BIN)/python -m multitune_lib data install --from $(DECATHLON)

test: data
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python -m multitune_lib bench

clean-cache:
	rm -rf data/cache
