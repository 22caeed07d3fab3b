import re
import subprocess
import sys
import tomllib

import yaml

from multitune_lib import paths

CONDA_NAMES = {"torch": "pytorch"}


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
    assert {CONDA_NAMES.get(k, k): v for k, v in wanted.items()} == conda
    assert conda_python == project["requires-python"]
    assert "conda-forge" in env["channels"]
    assert any(isinstance(d, dict) and "-e ." in d.get("pip", []) for d in env["dependencies"])


def cli(*args):
    return subprocess.run([sys.executable, "-m", "multitune_lib", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_help_explains_every_option():
    out = cli("run", "--help")
    assert out.returncode == 0
    for option in ("--method", "--dataset", "--shots", "--classes", "--epochs", "--seed", "--source", "--eta",
                   "--lr-last", "--milestones", "--alpha", "--beta", "--device", "--precision"):
        assert option in out.stdout
    assert cli("data", "install", "--help").returncode == 0
    assert "reference" in cli("bench", "--help").stdout


def test_cli_bad_input_is_one_clear_line(tmp_path):
    out = cli("run", "--method", "multitune", "--dataset", "aircraft", "--data-root", str(tmp_path / "none"),
              "--results", str(tmp_path / "r"), "--epochs", "1")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "does not exist" in out.stderr and "data install" in out.stderr
    out = cli("run", "--method", "multitune", "--dataset", "aircraft", "--source", str(tmp_path / "x.t7"))
    assert out.returncode == 2 and "resnet26_pretrained.t7" in out.stderr and "Traceback" not in out.stderr
    out = cli("data", "install", "--from", str(tmp_path))
    assert out.returncode == 2 and "decathlon-1.0-devkit.tar.gz" in out.stderr


def test_install_checks_checksums(tmp_path):
    import shutil
    shared = paths.shared_decathlon()
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(shared / "decathlon-1.0-devkit.tar.gz", src)
    (src / "SHA256SUMS").write_text("0" * 64 + "  decathlon-1.0-devkit.tar.gz\n")
    out = cli("data", "install", "--from", str(src), "--dest", str(tmp_path / "dest"))
    assert out.returncode == 2 and "checksum mismatch" in out.stderr
    (src / "SHA256SUMS").unlink()
    out = cli("data", "install", "--from", str(src), "--dest", str(tmp_path / "dest"))
    assert out.returncode == 0
    assert (tmp_path / "dest" / "decathlon-1.0" / "annotations" / "aircraft_train.json").exists()
