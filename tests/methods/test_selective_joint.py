"""Selective joint fine-tuning: plain fine-tuning without a pool, the joint loss, borrowing within each image's level,
mining hard images, resume, and its bad settings."""
import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F

from conftest import write_decathlon
from multitune_lib import data, paths
from multitune_lib.core.config import RunConfig
from multitune_lib.core.fit import fit, load_splits
from multitune_lib.core.trainer import Trainer
from multitune_lib.errors import ConfigError, DataError
from multitune_lib.methods import selective_joint as sj
from multitune_lib.store.results import read_history

COMMON = dict(dataset="toy", epochs=4, crop=32, batch_size=16, lr=0.1, milestones=(3,))
KEYS = ["train_loss", "val_acc"]


@pytest.fixture
def two_root(toy_root):
    return write_decathlon(toy_root, name="pool", classes=6, train=10, seed=3)


def trainer(root, **kw) -> Trainer:
    cfg = RunConfig(method="selective_joint", pool="pool", k0=2, neighbours=8, descriptor="gabor", **(COMMON | kw))
    more = sj.more_data(cfg.resolved(), functools.partial(data.load, root, cache=root.parent / "cache"))
    return Trainer(cfg, *load_splits(cfg, root, cache=root.parent / "cache"), device="cpu", more=more,
                   cache=root.parent / "cache")


@pytest.mark.parametrize("setting", [dict(pool="none"), dict(source_weight=0.0)])
def test_without_a_pool_or_with_lambda_0_it_is_plain_fine_tuning_on_the_same_seed(two_root, setting):
    ours = fit(RunConfig(method="selective_joint", **setting, **COMMON), data_root=two_root, results=two_root / "r")
    plain = fit(RunConfig(method="finetune", **COMMON), data_root=two_root, results=two_root / "r")
    h = [read_history(two_root / "r" / "runs" / r["digest"] / "history.csv")[KEYS] for r in (ours, plain)]
    assert h[0].equals(h[1])


def test_the_descriptors_are_cached_where_the_run_caches_and_nowhere_else(two_root, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "cache_dir", lambda: tmp_path / "default")
    cfg = RunConfig(method="selective_joint", pool="pool", k0=2, neighbours=8, descriptor="gabor", **COMMON)
    fit(dataclasses.replace(cfg, epochs=1, milestones=(), rounds=1), data_root=two_root, results=tmp_path / "r",
        cache=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("retrieval_gabor_*.pt"))) == 2  # the train split's and the pool's
    assert not (tmp_path / "default").exists()


def test_l2sp_reaches_the_source_head_made_once_the_pool_is_known(two_root):
    t = trainer(two_root, beta=0.01)
    assert any(p is t.model.source_fc.weight for p in t.reg.new)
    assert not any(p is t.model.source_fc.weight for p in t.reg.source)


def test_the_joint_loss_is_target_ce_plus_lambda_source_ce():
    model = sj.SelectiveJoint(None, classes=3, joint=True, source_weight=0.5).train()
    out, y = torch.randn(4, 3 + 5), torch.tensor([0, 2, 3 + 4, 3 + 0])
    want = F.cross_entropy(out[:2, :3], y[:2]) + 0.5 * F.cross_entropy(out[2:, 3:], y[2:] - 3)
    assert torch.allclose(sj.joint_loss(model, out, y), want)


def test_each_target_image_borrows_within_its_first_k0_x_level_neighbours(two_root):
    t = trainer(two_root)
    model = t.model
    model.level[:] = 1
    model.level[0] = 3
    idx = torch.tensor([0, 1] * 200)
    _, y = sj.borrow(t, idx, torch.zeros(400, 3, 32, 32, dtype=torch.uint8), torch.zeros(400, dtype=torch.long))
    src = set(model.drawn.nonzero().flatten().tolist())
    assert len(y) == 800 and (y[400:] >= model.classes).all()  # source labels after the target's
    allowed = set(model.neighbours[0, :6].tolist()) | set(model.neighbours[1, :2].tolist())  # k0 x level: 6 and 2
    assert src <= allowed and len(src) > 2


def test_the_neighbours_are_nearest_first_and_come_from_the_pool(two_root):
    t = trainer(two_root)
    assert t.model.neighbours.shape == (len(t.train), 8) and int(t.model.neighbours.max()) < len(t.more["pool"])


def test_mining_raises_the_level_of_wrong_and_uncertain_images(two_root, monkeypatch):
    t = trainer(two_root, entropy_threshold=0.5)
    n, c, labels = len(t.train), t.model.classes, t.train.labels
    logits = torch.full((n, c), -5.0)
    logits[torch.arange(n), labels] = 5.0  # right and sure
    logits[0] = 0.0
    logits[0, labels[0]] = 0.1  # right, but nearly uniform: entropy near log c
    logits[1, (labels[1] + 1) % c] = 9.0  # wrong
    monkeypatch.setattr(t.model, "forward", lambda x: logits[:len(x)])
    t.cfg = dataclasses.replace(t.cfg, batch_size=n)  # one batch: the logits line up with the images
    sj.mine(t)
    assert t.model.level.tolist() == [1 + sj.UNSURE, 1 + sj.WRONG] + [1] * (n - 2)
    assert t.model.hard.tolist() == [1, 1] and not t.model.drawn.any()


def test_rounds_split_the_epochs():
    cfg = RunConfig(method="selective_joint", dataset="aircraft", epochs=15, rounds=2)
    assert sj.round_starts(cfg.resolved()) == [1, 8]
    assert sj.round_starts(RunConfig(method="selective_joint", dataset="aircraft", epochs=15, rounds=3)) == [1, 6, 11]


def test_an_interrupted_run_resumes_to_the_same_history(two_root):
    whole = trainer(two_root)
    for _ in range(4):
        whole.epoch()
    first = trainer(two_root)
    for _ in range(2):
        first.epoch()
    resumed = trainer(two_root)
    resumed.load_state_dict(first.state_dict())
    for _ in range(2):
        resumed.epoch()
    cols = KEYS + ["sources_used", "source_classes_used", "hard_wrong", "hard_unsure"]
    assert [[r[k] for k in cols] for r in resumed.history] == [[r[k] for k in cols] for r in whole.history]


@pytest.mark.parametrize("kw, field", [(dict(pool="aircraft"), "pool"), (dict(k0=0), "k0"), (dict(neighbours=0),
                                       "neighbours"), (dict(bins=1), "bins"), (dict(k0=30, neighbours=10), "neighbours"),
                                       (dict(descriptor="alexnet"), "descriptor"), (dict(source_weight=-1), "source"),
                                       (dict(rounds=3, epochs=2), "rounds")])
def test_bad_settings_are_one_clear_line_before_any_data_loads(kw, field):
    with pytest.raises(ConfigError, match=field) as e:
        RunConfig(method="selective_joint", dataset="aircraft", **kw)
    assert "\n" not in str(e.value)


def test_a_missing_pool_is_one_clear_line(toy_root):
    with pytest.raises(DataError, match="nowhere") as e:
        fit(RunConfig(method="selective_joint", pool="nowhere", **COMMON), data_root=toy_root, results=toy_root / "r")
    assert "\n" not in str(e.value)
