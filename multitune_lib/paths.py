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


def relative(path) -> str:
    """`path` as notebooks and tables print it: relative to the project root where it lies inside, so that no
    folder of this machine shows."""
    path, root = Path(path).resolve(), project_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


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


def shown(path: str | os.PathLike) -> str:
    """A default path as help texts print it: 'data/x in the project' for one inside the project, any other as
    given (a relative one is not resolved: that would print the folder the command happens to run in)."""
    inside = Path(path).is_absolute() and Path(path).resolve().is_relative_to(project_root())
    return f"{relative(path)} in the project" if inside else str(path)
