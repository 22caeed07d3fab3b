"""Where things live, resolved from the project root so notebooks and papermill work from any folder."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout holding this package (editable install), else $MULTITUNE_HOME, else the cwd."""
    if "MULTITUNE_HOME" in os.environ:
        return Path(os.environ["MULTITUNE_HOME"]).resolve()
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_dir() -> Path:
    return project_root() / "data"


def default_data_root() -> Path:
    """The unpacked Decathlon root: holds annotations/ and data/<name>/."""
    return data_dir() / "decathlon" / "decathlon-1.0"


def cache_dir() -> Path:
    return data_dir() / "cache"


def shared_decathlon() -> Path:
    """The archives beside the checkout that tests and CI install from."""
    return project_root().parent / "shared" / "decathlon"


def default_source() -> Path:
    """The committed source model of the offline profile (`python -m multitune_lib pretrain`)."""
    return project_root() / "data" / "pretrained" / "resnet26_cifar100_1-50.pt"


def results_dir(profile: str) -> Path:
    """A profile's results store."""
    return project_root() / "results" / profile


def executed_dir(profile: str) -> Path:
    """Executed copies of the notebooks live beside the profile's results store."""
    return results_dir(profile) / "notebooks"


def figures_dir(profile: str) -> Path:
    """figures/<profile>, so a smoke run never overwrites published figures; $MULTITUNE_FIGURES overrides it."""
    return project_root() / os.environ.get("MULTITUNE_FIGURES", f"figures/{profile}")
