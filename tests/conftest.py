import json
import os
from pathlib import Path

import pytest
import torch
from torchvision.io import encode_jpeg

from multitune_lib import paths
from multitune_lib.tools import install
from slurm_cluster import LocalSlurm, Unavailable

os.environ.setdefault("CI", "1")  # quiet progress bars in test logs


@pytest.fixture(scope="session")
def decathlon_root() -> Path:
    """The real Decathlon data, installed from ../shared/decathlon into the ignored data folder once."""
    root = paths.default_data_root()
    if not (root / "annotations" / "aircraft_train.json").exists():
        shared = paths.shared_decathlon()
        if not shared.is_dir():
            pytest.fail(f"no Decathlon data at {root} and no archives at {shared}: "
                        "run `python -m multitune_lib data install --from DIR` first")
        install.install(shared, root.parent)
    return root


COLOURS = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 220, 40), (200, 40, 200), (40, 210, 210)]


def write_decathlon(root: Path, name: str = "toy", classes: int = 4, train: int = 12, val: int = 6,
                    seed: int = 0) -> Path:
    """A Decathlon-format dataset whose classes are easily told apart: a noisy solid colour per class.

    Images are 72 px high and 90 px wide, like the Decathlon's, so decoding crops their centre."""
    g = torch.Generator().manual_seed(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    image_id = 1
    for split, per_class in (("train", train), ("val", val)):
        images, anns = [], []
        for c in range(classes):
            for i in range(per_class):
                rel = f"data/{name}/{split}/{c + 1:04d}/{image_id:06d}.jpg"
                colour = torch.tensor(COLOURS[c % len(COLOURS)], dtype=torch.float32).view(3, 1, 1)
                img = (colour + 30 * torch.randn(3, 72, 90, generator=g)).clamp(0, 255).to(torch.uint8)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(encode_jpeg(img, quality=95).numpy().tobytes())
                images.append({"id": image_id, "file_name": rel, "width": 90, "height": 72})
                anns.append({"id": image_id, "image_id": image_id, "category_id": 500 + c})
                image_id += 1
        categories = [{"id": 500 + c, "name": f"class{c}"} for c in range(classes)]
        (root / "annotations" / f"{name}_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return root


@pytest.fixture
def toy_root(tmp_path) -> Path:
    return write_decathlon(tmp_path / "decathlon-1.0")


def finish_run(study, cfg, acc: float = 0.5, best: float | None = None, history: list | None = None) -> str:
    """A finished run in the study's store, without training, its final accuracy `acc`: validated once; with
    `best`, validated at `best` one epoch before; with `history`, the epochs given."""
    if history is None:
        history = [{"epoch": 1, "val_acc": acc}] if best is None else [{"epoch": 1, "val_acc": best},
                                                                       {"epoch": 2, "val_acc": acc}]
    row = {"digest": cfg.digest(), "config": cfg.resolved().to_dict(), "source": None, "tags": {},
           "metrics": {"final_val_acc": acc, "best_val_acc": acc if best is None else best, "train_minutes": 1.0,
                       "precision": "float32"},
           "env": {"device_name": "test"}, "finished_at": "2026-01-01T00:00:00+00:00"}
    study.store.finish(row, [{"train_loss": 1.0, **h} for h in history])
    return cfg.digest()


@pytest.fixture
def finish():
    """finish(study, config, acc, best=None, history=None): a finished run in the study's store, without training."""
    return finish_run


# The `slurm` marker: tests against a one-node SLURM cluster that tests/slurm_cluster.py starts on this machine once
# per test session and stops at its end. Where it cannot start (SLURM not installed, no root), they skip saying why;
# with MULTITUNE_SLURM=required (CI, which installs SLURM) they fail instead, so that a log of passes means they ran.
MARKER = "slurm"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARKER}: runs against a one-node SLURM cluster on this machine "
                            "(tests/slurm_cluster.py); skipped where none can start")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as e:
        required = os.environ.get("MULTITUNE_SLURM") == "required"
        (pytest.fail if required else pytest.skip)(f"no SLURM cluster on this machine: {e}")
    yield cluster
    cluster.stop()


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """The cluster, with SLURM's commands (submitit's sbatch included) pointed at it; no job outlives the test."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    yield slurm_cluster
    slurm_cluster.cancel_all()


def pytest_terminal_summary(terminalreporter):
    """Name each test that ran against the scheduler and how it ended, so that a quiet log still shows them."""
    reports = [r for outcome in ("passed", "failed", "error", "skipped")
               for r in terminalreporter.stats.get(outcome, []) if MARKER in getattr(r, "keywords", {})]
    if reports:
        terminalreporter.write_sep("-", "tests against a one-node SLURM cluster")
        for r in reports:
            skipped = r.skipped and isinstance(r.longrepr, tuple)  # (file, line, reason)
            why = f": {r.longrepr[2].removeprefix('Skipped: ')}" if skipped else ""
            terminalreporter.write_line(f"{r.outcome.upper()} {r.nodeid} ({r.duration:.0f} s){why}")


def policy_gradient(model, x, y, autocast_dtype=None) -> torch.Tensor:
    """The gradient of the cross-entropy on the model's `policy` parameters, flattened to float64: under CPU autocast
    to `autocast_dtype`, or with none."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        out = model(x)
    torch.nn.functional.cross_entropy(out.to(x.dtype), y).backward()
    return torch.cat([p.grad.flatten().double() for p in model.policy.parameters() if p.grad is not None])
