"""Parameter contribution: the criteria, freezing that holds bitwise, its limits (plain fine-tuning at ratio 1,
feature extraction at ratio 0 with frozen BN statistics) and the ratio search."""
import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from multitune_lib import data
from multitune_lib.core.backbone import Backbone
from multitune_lib.core.config import RunConfig
from multitune_lib.core.fit import fit, load_splits
from multitune_lib.core.trainer import Trainer
from multitune_lib.errors import ConfigError, DataError, TrainingDiverged
from multitune_lib.methods import Contribution
from multitune_lib.methods import contribution as method
from multitune_lib.methods.ratio_search import best, search, swarm, trained_share
from multitune_lib.store.results import ResultsStore


class Tiny(Backbone):
    """One 1x1 conv (weight w) and its BN-free mean pool: features = w * mean(x)."""

    def __init__(self, w: float):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.constant_(self.conv.weight, w)
        self.blocks, self.num_features = nn.ModuleList(), 1
        self.fc = nn.Linear(1, 2)

    def stem(self, x):
        return self.conv(x)

    def pool(self, x):
        return x.mean((2, 3))


def test_the_criteria_rank_each_layer_as_worked_by_hand():
    score = torch.tensor([3.0, -1.0, 2.0, 0.0])
    assert method.chosen(score, 0.5).tolist() == [False, True, False, True]  # the two lowest: -1 and 0
    assert method.chosen(score, 0.74).tolist() == [False, True, False, True]  # floor(0.74 x 4) = 2
    assert method.chosen(score.abs(), 0.25).tolist() == [False, False, False, True]  # |w|: 0 lowest
    assert method.chosen(torch.zeros(3), 2 / 3).tolist() == [True, True, False]  # ties in index order
    model = Contribution(Tiny(-0.5), frozen_bn=False)
    assert method.signed_value(None, model)["conv.weight"].item() == -0.5
    assert method.magnitude(None, model)["conv.weight"].item() == 0.5


def test_the_taylor_criterion_is_w_times_its_gradient_worked_by_hand(monkeypatch):
    # one image of ones, w = 0.5, head logits (f, -f): z = (0.5, -0.5); label 0, so dL/dz = (p0 - 1, 1 - p0) with
    # p0 = sigmoid(1); dL/dw = x (dL/dz0 - dL/dz1) = -2 (1 - p0); score |w dL/dw| = 1 - p0
    head = nn.Linear(1, 2, bias=False)
    head.weight.data = torch.tensor([[1.0], [-1.0]])
    monkeypatch.setattr(method, "fit_head", lambda feats, labels, classes: head)
    split = data.Split(torch.ones(1, 1, 2, 2, dtype=torch.uint8), torch.tensor([0]), 2, ["a"])
    trainer = SimpleNamespace(train=split, norm_eval=lambda x: x.float(), cfg=SimpleNamespace(batch_size=1))
    score = method.taylor(trainer, Contribution(Tiny(0.5), frozen_bn=False))["conv.weight"].item()
    assert score == pytest.approx(1 - torch.sigmoid(torch.tensor(1.0)).item(), rel=1e-6)


def test_the_taylor_head_is_fitted_from_zero_and_stays_finite_on_separable_features():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    head = method.fit_head(feats, torch.tensor([0, 1]), 2)
    assert head(feats).argmax(1).tolist() == [0, 1] and torch.isfinite(head.weight).all()


def toy_config(**kw) -> RunConfig:
    base = dict(method="contribution", dataset="toy", epochs=2, crop=32, batch_size=16, lr=0.1, milestones=(1,),
                weight_decay=5e-4)
    return RunConfig(**(base | kw))


def trainer(toy_root, cfg) -> Trainer:
    return Trainer(cfg, *load_splits(cfg, toy_root, cache=toy_root.parent / "cache"), device="cpu")


@pytest.mark.parametrize("frozen_bn", [False, True])
def test_only_the_masked_in_weights_move_weight_decay_and_momentum_included(toy_root, frozen_bn):
    # lr 0.01: a network from random initialisation with its BN statistics frozen diverges at 0.1
    t = trainer(toy_root, toy_config(ratios=(0.5,), frozen_bn=frozen_bn, lr=0.01))
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.epoch(), t.epoch()
    after, masks = t.model.state_dict(), t.model.masks()
    for name, mask in masks.items():
        old, new = before[f"net.{name}"], after[f"net.{name}"]
        assert torch.equal(old[~mask], new[~mask]), name  # bitwise: frozen weights never move
        if mask.sum() > 4:
            assert not torch.equal(old[mask], new[mask]), name
    stats = [k for k in after if k.endswith("running_mean")]
    assert stats and all(torch.equal(before[k], after[k]) == frozen_bn for k in stats)


def test_ratio_1_everywhere_is_plain_fine_tuning_on_the_same_seed(toy_root):
    kw = dict(dataset="toy", epochs=2, crop=32, batch_size=16, lr=0.1, milestones=(1,), weight_decay=5e-4)
    ours = fit(RunConfig(method="contribution", ratios=(1.0,), **kw), data_root=toy_root, results=toy_root / "r")
    plain = fit(RunConfig(method="finetune", **kw), data_root=toy_root, results=toy_root / "r")
    assert ours["metrics"]["final_val_acc"] == plain["metrics"]["final_val_acc"]
    assert same_history(toy_root / "r", ours["digest"], plain["digest"])


def test_ratio_0_with_frozen_bn_statistics_is_feature_extraction_on_the_same_seed(toy_root):
    kw = dict(dataset="toy", epochs=2, crop=32, batch_size=16, lr=0.1, milestones=(1,), weight_decay=0.0)
    ours = fit(RunConfig(method="contribution", ratios=(0.0,), frozen_bn=True, **kw), data_root=toy_root,
               results=toy_root / "r")
    feature = fit(RunConfig(method="feature", **kw), data_root=toy_root, results=toy_root / "r")
    assert same_history(toy_root / "r", ours["digest"], feature["digest"])


def same_history(results, a: str, b: str) -> bool:
    from multitune_lib.store.results import read_history
    ha, hb = (read_history(results / "runs" / d / "history.csv") for d in (a, b))
    cols = ["train_loss", "val_acc"]
    return ha[cols].equals(hb[cols])


def quadratic(ratios):
    return -((ratios[0] - 0.3) ** 2 + (ratios[1] - 0.7) ** 2)


def test_the_swarm_finds_the_optimum_of_a_known_objective_and_is_seeded():
    scored = swarm(quadratic, dims=2, particles=10, iterations=20, seed=0)
    top = best(scored)
    assert top.ratios == pytest.approx((0.3, 0.7), abs=0.03)
    assert swarm(quadratic, 2, 4, 3, seed=1) == swarm(quadratic, 2, 4, 3, seed=1)
    assert [s.iteration for s in scored[:11]] == [0] * 10 + [1]


def test_an_interrupted_swarm_asks_the_same_candidates_again():
    whole = swarm(quadratic, 2, 4, 3, seed=0)
    seen = {}

    def flaky(ratios):
        if len(seen) == 5:
            raise KeyboardInterrupt
        seen[ratios] = quadratic(ratios)
        return seen[ratios]
    with pytest.raises(KeyboardInterrupt):
        swarm(flaky, 2, 4, 3, seed=0)
    resumed = swarm(lambda r: seen[r] if r in seen else quadratic(r), 2, 4, 3, seed=0)
    assert resumed == whole


def test_an_interrupted_search_resumes_from_its_stored_proxies_to_the_same_result(toy_root, tmp_path):
    cfg = toy_config(epochs=1, search_particles=2, search_iterations=2, proxy_epochs=1).resolved()
    calls = []

    def proxy(store, fail_at=None):
        def run(c):
            if len(calls) == fail_at:
                raise KeyboardInterrupt
            calls.append(c.digest())
            return fit(c, data_root=toy_root, results=store)
        return run
    with pytest.raises(KeyboardInterrupt):
        search(cfg, proxy(tmp_path / "a", fail_at=2))
    resumed_cfg, resumed = search(cfg, proxy(tmp_path / "a"))
    fresh_cfg, fresh = search(cfg, proxy(tmp_path / "b"))
    assert resumed_cfg == fresh_cfg and resumed["record"] == fresh["record"]
    assert resumed["metrics"]["searched_ratios"] == fresh["metrics"]["searched_ratios"]
    assert len(fresh["record"]["candidates"]) == 4 and resumed_cfg.ratios is not None


def test_a_searched_run_records_its_ratios_candidates_and_cost(toy_root):
    cfg = toy_config(epochs=1, search_particles=2, search_iterations=1, proxy_epochs=1)
    row = fit(cfg, data_root=toy_root, results=toy_root / "r")
    m = row["metrics"]
    assert row["config"]["ratios"] is None and row["digest"] == cfg.digest()  # the run is the config that asked
    ratios = tuple(map(float, m["searched_ratios"].split()))
    assert len(ratios) == 25 and m["proxy_runs"] == 2 and m["search_minutes"] > 0
    assert m["trained_share"] == pytest.approx(trained_share("resnet26", ratios))
    scores = [c["score"] for c in row["search"]["candidates"]]
    assert m["search_score"] == max(scores) and m["proxy_diverged"] == 0
    assert m["setup_minutes"] > 0  # ranking and masking before the first epoch, outside train_minutes
    store = ResultsStore(toy_root / "r")
    assert all(store.finished(c["digest"]) for c in row["search"]["candidates"])  # each names its proxy run
    proxy = fit(dataclasses.replace(cfg.resolved(), ratios=ratios, epochs=1, milestones=(), holdout=0.2,
                                    eval_every=1), data_root=toy_root, results=toy_root / "r")
    assert proxy["tags"]["proxy_of"] == row["digest"]  # found, not retrained: the candidate's own run


def test_a_diverged_proxy_scores_zero_and_the_search_goes_on():
    cfg = toy_config(search_particles=2, search_iterations=2).resolved()
    asked = []

    def proxy(c):
        asked.append(c.ratios)
        if len(asked) == 1:
            raise TrainingDiverged("contribution toy diverged in epoch 1")
        return {"digest": c.digest(), "metrics": {"best_val_acc": 0.5, "train_minutes": 1.0, "setup_minutes": 0.5}}
    found, done = search(cfg, proxy)
    candidates, m = done["record"]["candidates"], done["metrics"]
    assert len(asked) == 4 and [c["diverged"] for c in candidates] == [True, False, False, False]
    assert candidates[0]["score"] == 0.0 and found.ratios == tuple(candidates[1]["ratios"])
    assert m["proxy_diverged"] == 1 and m["search_minutes"] == 3 * 1.5  # the diverged proxy's minutes unknown


def test_a_method_without_setup_records_no_setup_minutes(toy_root):
    row = fit(RunConfig(method="finetune", dataset="toy", epochs=1, crop=32, batch_size=16), data_root=toy_root,
              results=toy_root / "r")
    assert "setup_minutes" not in row["metrics"]


def test_trained_share_counts_each_layer_and_its_norm():
    assert trained_share("resnet26", (1.0,)) == 1.0 and trained_share("resnet26", (0.0,)) == 0.0
    assert trained_share("resnet26", (0.5,)) == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("kw, field", [
    (dict(ratios=(1.2,)), "ratios"), (dict(ratios=(0.5, 0.5)), "ratios"), (dict(search_particles=0), "search_particles"),
    (dict(search_iterations=0), "search_iterations"), (dict(search_holdout=1.0), "search_holdout"),
    (dict(search_holdout=0.0), "search_holdout"), (dict(holdout=1.5), "holdout"),
    (dict(search_holdout=0.5, images_per_class=1), "search_holdout"), (dict(criterion="fisher"), "criterion")])
def test_bad_settings_are_one_clear_line_before_any_data_loads(kw, field):
    with pytest.raises(ConfigError, match=field) as e:
        RunConfig(method="contribution", dataset="nowhere", **kw)
    assert "\n" not in str(e.value)


def test_search_settings_belong_to_contribution_alone():
    with pytest.raises(ConfigError, match="ratios is a setting of contribution"):
        RunConfig(method="finetune", dataset="aircraft", ratios=(0.5,))


def test_hold_out_takes_a_seeded_share_of_each_class_and_refuses_an_empty_class():
    split = data.Split(torch.zeros(30, 3, 4, 4, dtype=torch.uint8), torch.arange(30) % 3, 3, [str(i) for i in range(30)])
    rest, held = data.hold_out(split, 0.2, seed=0)
    assert torch.bincount(held.labels).tolist() == [2, 2, 2] and len(rest) == 24
    assert not set(rest.files) & set(held.files)
    assert data.hold_out(split, 0.2, seed=0)[1].files == held.files != data.hold_out(split, 0.2, seed=1)[1].files
    assert len(data.hold_out(split, 0.95, seed=0)[0]) == 3  # floor(9.5) held out: one image left per class
    lone = data.Split(split.images[:4], torch.tensor([0, 1, 1, 1]), 2, list("abcd"))
    with pytest.raises(DataError, match=r"holdout 0.2 leaves class 1 \(1 image\) without a training image"):
        data.hold_out(lone, 0.2, seed=0)


def test_a_share_is_counted_whole_despite_binary_rounding():
    assert int(method.chosen(torch.arange(100.0), 0.57).sum()) == 57  # 0.57 x 100 is 56.99999... in binary
    split = data.Split(torch.zeros(100, 3, 4, 4, dtype=torch.uint8), torch.zeros(100, dtype=torch.long), 1,
                       [str(i) for i in range(100)])
    assert len(data.hold_out(split, 0.58, seed=0)[1]) == 58


def test_holdout_with_a_search_is_refused_as_its_proxies_would_train_on_the_held_out_images():
    with pytest.raises(ConfigError, match="holdout with contribution's search.*give ratios, or drop holdout"):
        RunConfig(method="contribution", dataset="aircraft", holdout=0.2)
    RunConfig(method="contribution", dataset="aircraft", holdout=0.2, ratios=(0.5,))  # no search, no overlap


def test_with_ratios_given_the_search_budget_is_not_part_of_the_run():
    given = RunConfig(method="contribution", dataset="aircraft", ratios=(0.5,))
    assert dataclasses.replace(given, search_particles=9, proxy_epochs=4, search_holdout=0.5).digest() == \
        given.digest()  # a proxy of a longer search is the proxy of a shorter one
    searched = RunConfig(method="contribution", dataset="aircraft")
    assert dataclasses.replace(searched, search_particles=9).digest() != searched.digest()
