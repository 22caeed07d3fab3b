"""`pretrain`: a source model from scratch, saved with its metadata; the committed one says what it is."""
import json

import pytest

from multitune_lib import paths
from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.errors import ConfigError
from multitune_lib.store.checkpoint import load_source
from multitune_lib.tools.pretrain import pretrain, pretrain_config


def test_pretrain_writes_a_source_model_and_never_overwrites_another(toy_root, tmp_path):
    out, results = tmp_path / "src.pt", tmp_path / "res"
    kw = dict(out=out, data_root=toy_root, results=results, device="cpu", note="test")
    settings = dict(dataset="toy", classes=(1, 2, 3), epochs=2, crop=32)
    meta = pretrain(pretrain_config(**settings), **kw)
    sd, stored = load_source(out)
    assert stored == meta == json.loads(out.with_suffix(".json").read_text())
    assert meta["classes"] == "1-3" and meta["num_classes"] == 3 and meta["train_images"] == 36
    assert meta["schedule"]["milestones"] == [1, 1] and meta["eval_size"] == 40 and meta["note"] == "test"
    assert 0 <= meta["final_val_acc"] <= 1 and len(meta["history"]) == 2 and meta["git_commit"]
    resnet26(7).load_source(sd)  # a backbone for any head
    stamp = out.stat().st_mtime_ns
    assert pretrain(pretrain_config(**settings), **kw) == meta and out.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="--force"):
        pretrain(pretrain_config(**{**settings, "epochs": 1}), **kw)
    assert pretrain(pretrain_config(**{**settings, "epochs": 1}), **kw, force=True)["epochs"] == 1


def test_the_committed_source_model_is_what_its_metadata_says():
    path = paths.default_source()
    assert path.exists(), f"{path} is missing: a fresh clone must have a source model"
    assert path.stat().st_size < 25 * 2**20
    sd, meta = load_source(path)
    assert meta["origin"] == "multitune pretrain" and meta["dataset"] == "cifar100" and meta["classes"] == "1-50"
    assert meta["train_images"] == 20000 and meta["val_images"] == 5000 and meta["num_classes"] == 50
    assert meta["history"][-1]["val_acc"] == meta["final_val_acc"] > 0.02  # better than chance on 50 classes
    resnet26(100).load_source(sd)


def test_pretrain_config_defaults():
    cfg = pretrain_config()
    assert (cfg.method, cfg.dataset, cfg.classes, cfg.epochs) == ("scratch", "cifar100", tuple(range(1, 51)), 60)
    assert cfg.milestones == (30, 45) and cfg.lr == 0.1 and cfg.weight_decay == 5e-4 and cfg.source_sha256 is None
    assert cfg.resolved() == cfg
    assert pretrain_config(epochs=8).milestones == (4, 6)
    assert pretrain_config(epochs=8, milestones=[2]).milestones == (2,)
    assert pretrain_config(classes="all").classes is None and pretrain_config(classes="51-52").classes == (51, 52)


def test_the_committed_source_model_is_the_default_pretrain_config():
    """The offline profiles' source: its run is today's default `pretrain`, so `pretrain` with no options finds it
    and does not train again."""
    meta = load_source(paths.default_source())[1]
    cfg = pretrain_config(epochs=meta["epochs"], crop=meta["crop"], seed=meta["seed"],
                          milestones=meta["schedule"]["milestones"], batch_size=meta["schedule"]["batch_size"])
    assert cfg.digest() == meta["run_digest"]
