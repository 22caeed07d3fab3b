# Fresh machine: `make test` or `make study`. torch is pinned here, so an install is repeatable;
# pyproject.toml declares ranges so other machines keep their own torch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1
# The drawing stack, pinned because committed figures are redrawn byte for byte (tests/study/test_figures.py):
# fontTools 4.69 keeps every name record (the font's licence text) in each PDF's embedded font subset.
DRAWING := matplotlib==3.11.2 fonttools==4.68.0
DECATHLON ?= ../shared/decathlon
# auto: imagenet where CUDA is present, imagenet-cpu elsewhere
PROFILE ?= auto
# nbval cannot pass notebook parameters: the profile comes from the environment, and its figures go aside.
NBVAL_ENV := MULTITUNE_PROFILE=smoke MULTITUNE_FIGURES=runs/nbval/figures
# the project's Jupyter kernel (multitune_lib/study/kernel.py), registered by `install`
KERNEL := multitune
NBVAL := --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg --nbval-kernel-name $(KERNEL)

.PHONY: install data test study report lab bench clean-cache

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]' $(DRAWING)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))"
	touch $@

data: install
	$(BIN)/python -m multitune_lib data install --from $(DECATHLON)

test: data
	$(NBVAL_ENV) $(BIN)/python -m pytest -q tests notebooks $(NBVAL)

study: data
	$(BIN)/python -m multitune_lib study --profile $(PROFILE) $(if $(SOURCE),--source $(SOURCE))

# HTML pages of the profile's executed notebooks (from `make study`), in figures/<profile>/report/
report: install
	$(BIN)/python -m multitune_lib report --profile $(PROFILE)

# JupyterLab on the project (results/<profile>/notebooks/ and figures/ in reach), opened on notebooks/
lab: install
	$(BIN)/jupyter lab --LabApp.default_url=/lab/tree/notebooks

bench: install
	$(BIN)/python -m multitune_lib bench

clean-cache:
	rm -rf data/cache
