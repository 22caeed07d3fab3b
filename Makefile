# Fresh machine: `make test` or `make study`. torch is pinned here (the wheels lie on this machine's disk);
# pyproject.toml declares ranges so other machines keep their own torch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
DECATHLON ?= ../shared/decathlon
# auto: imagenet where CUDA is present, imagenet-cpu elsewhere
PROFILE ?= auto
# nbval cannot pass notebook parameters: the profile comes from the environment, and its figures go aside.
NBVAL_ENV := MULTITUNE_PROFILE=smoke MULTITUNE_FIGURES=runs/nbval/figures
NBVAL := --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg

.PHONY: install data test study bench clean-cache

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

data: install
	$(BIN)/python -m multitune_lib data install --from $(DECATHLON)

test: data
	$(NBVAL_ENV) $(BIN)/python -m pytest -q tests notebooks $(NBVAL)

study: data
	$(BIN)/python -m multitune_lib study --profile $(PROFILE) $(if $(SOURCE),--source $(SOURCE))

bench: install
	$(BIN)/python -m multitune_lib bench

clean-cache:
	rm -rf data/cache
