"""RunConfig: defaults, validation, class lists, and the hash that names a run in the results store."""
import json

import pytest

from multitune_lib import paths
from multitune_lib.core.config import ADDED_SINCE, RunConfig, class_spec, parse_classes, upgrade
from multitune_lib.core.registry import BACKBONES, METHODS
from multitune_lib.data import eval_side
from multitune_lib.errors import ConfigError

COMMITTED_RUNS = sorted((paths.project_root() / "results" / "offline-cpu" / "runs").glob("*/run.json"))


def test_config_hash_tells_settings_apart():
    a = RunConfig(method="multitune", dataset="aircraft")
    assert a.digest() == RunConfig(method="multitune", dataset="aircraft", lr=0.1, milestones=(20, 50, 80)).digest()
    assert a.digest() != RunConfig(method="multitune", dataset="aircraft", images_per_class=5).digest()
    assert a.digest() != RunConfig(method="multitune", dataset="aircraft", source_sha256="ab").digest()
    assert RunConfig(method="spottune", dataset="cifar100").resolved().weight_decay == 0.0
    assert RunConfig(method="spottune", dataset="aircraft").resolved().weight_decay == 5e-4
    assert RunConfig.from_dict(a.resolved().to_dict()).digest() == a.digest()


def test_none_fields_resolve_to_the_method_defaults():
    m = RunConfig(method="multitune", dataset="aircraft").resolved()
    assert (m.lr, m.lr_last, m.milestones, m.weight_decay) == (0.1, 0.01, (20, 50, 80), 0.0)
    assert (m.alpha, m.beta) == (0.01, 0.01)
    s = RunConfig(method="spottune", dataset="aircraft").resolved()
    assert (s.lr, s.policy_lr, s.milestones, s.policy_weight_decay) == (0.1, 0.01, (40, 60, 80), 1e-3)
    assert (s.alpha, s.beta, s.lr_last) == (0.0, 0.0, None)  # no L2-SP; no setting B
    f = RunConfig(method="finetune", dataset="cifar100").resolved()
    assert (f.alpha, f.beta, f.weight_decay) == (0.0, 0.0, 0.0)
    assert RunConfig(method="scratch", dataset="aircraft").resolved().weight_decay == 5e-4
    # what is given stays; resolving twice changes nothing
    given = RunConfig(method="spottune", dataset="aircraft", lr=0.05, weight_decay=0.0, milestones=[3]).resolved()
    assert (given.lr, given.weight_decay, given.milestones) == (0.05, 0.0, (3,))
    assert given.resolved() == given
    # the plain defaults of the dataclass
    c = RunConfig(method="finetune", dataset="aircraft")
    assert (c.backbone, c.images_per_class, c.classes, c.seed, c.epochs, c.resolved().batch_size, c.crop, c.eta) == \
        ("resnet26", None, None, 0, 110, 128, 64, 0.5)


@pytest.mark.parametrize("run_json", COMMITTED_RUNS, ids=lambda p: p.parent.name)
def test_committed_runs_keep_their_digest(run_json):
    """The offline-cpu store was written before `shots` became `images_per_class` and `backbone` was added: its
    runs must still be found under the same names, or every finished run would be trained again."""
    row = json.loads(run_json.read_text())
    assert "shots" in row["config"] and "images_per_class" not in row["config"]  # the old format, as committed
    cfg = RunConfig.from_dict(row["config"])
    assert cfg.images_per_class == row["config"]["shots"] and cfg.backbone == "resnet26"
    assert cfg.digest() == row["digest"] == run_json.parent.name
    assert RunConfig.from_dict(cfg.to_dict()).digest() == row["digest"]  # today's field names, same run
    changed = {k for k, v in vars(cfg.resolved()).items() if getattr(cfg, k) != v}
    assert changed <= set(ADDED_SINCE)  # stored resolved: only switches added since fill in, at their old values


def test_committed_store_is_all_there():
    assert len(COMMITTED_RUNS) == 12


def test_from_dict_upgrades_shots_and_rejects_unknown_fields():
    old = {"method": "finetune", "dataset": "aircraft", "shots": 5}
    assert upgrade(old) == {"method": "finetune", "dataset": "aircraft", "images_per_class": 5}
    assert RunConfig.from_dict(old) == RunConfig(method="finetune", dataset="aircraft", images_per_class=5)
    assert "shots" not in RunConfig.from_dict(old).to_dict()
    with pytest.raises(ConfigError, match="unknown config fields.*'colour'"):
        RunConfig.from_dict({**old, "colour": "red"})


def test_classes_given_as_text_are_normalised():
    a = RunConfig(method="finetune", dataset="cifar100", classes="51-100")
    assert a.classes == tuple(range(51, 101))
    assert a == RunConfig(method="finetune", dataset="cifar100", classes=range(51, 101))
    assert a.digest() == RunConfig(method="finetune", dataset="cifar100", classes=list(range(100, 50, -1))).digest()
    assert RunConfig(method="finetune", dataset="cifar100", classes="3,1,2,2").classes == (1, 2, 3)
    assert RunConfig(method="finetune", dataset="cifar100", classes="all").classes is None
    assert RunConfig(method="finetune", dataset="cifar100", milestones=[5, 8]).milestones == (5, 8)
    assert a.to_dict()["classes"] == list(range(51, 101))
    with pytest.raises(ConfigError, match="bad class list"):
        RunConfig(method="finetune", dataset="cifar100", classes="fifty")


@pytest.mark.parametrize("field, registry", [("method", METHODS), ("backbone", BACKBONES)])
def test_unknown_method_or_backbone_names_the_choices(field, registry):
    kw = {"method": "finetune", "dataset": "aircraft", field: "nosuch"}
    with pytest.raises(ConfigError, match=f"unknown {field} 'nosuch'") as err:
        RunConfig(**kw)
    assert registry.names() and all(name in str(err.value) for name in registry.names())


@pytest.mark.parametrize("kw, message", [
    (dict(epochs=0), r"epochs must be an integer >= 1, got 0"),
    (dict(batch_size=0), r"batch_size must be an integer >= 1"),
    (dict(eval_every=0), r"eval_every must be an integer >= 1"),
    (dict(eta=1.5), r"eta must be a finite number in \[0, 1\], got 1.5"),
    (dict(images_per_class=0), r"images_per_class must be an integer >= 1"),
    (dict(input_size=8), r"input_size must be an integer >= 16"),
    (dict(input_size=600), r"input_size must lie in \[16, 512\]"),
    (dict(lr=-1.0), r"lr must be a finite number in \(0, inf\), got -1.0"),
    (dict(lr=float("nan")), r"lr must be a finite number in \(0, inf\), got nan"),
    (dict(lr=float("inf")), r"lr must be a finite number"),
    (dict(lr="0.1"), r"lr must be a finite number"),
    (dict(gamma=-1.0), r"gamma must be a finite number in \(0, inf\)"),
    (dict(alpha=-5.0), r"alpha must be a finite number in \[0, inf\)"),
    (dict(beta=float("nan")), r"beta must be a finite number"),
    (dict(momentum=1.0), r"momentum must be a finite number in \[0, 1\)"),
    (dict(weight_decay=-1e-4), r"weight_decay must be"),
    (dict(temperature=0.0), r"temperature must be a finite number in \(0, inf\)"),
    (dict(seed=1.5), r"seed must be an integer >= 0, got 1.5"),
    (dict(seed=-1), r"seed must be an integer >= 0"),
    (dict(epochs=True), r"epochs must be an integer"),
    (dict(milestones=(50, 20)), r"milestones must be epochs >= 0 in increasing order"),
    (dict(milestones=(-1,)), r"milestones must be epochs >= 0"),
    (dict(milestones=(2.5,)), r"milestones must be epochs >= 0"),
    (dict(crop=36), r"crop must be a multiple of 8"),
    (dict(classes="10-5"), r"the range 10-5 is inverted; write 5-10"),
    (dict(classes="0-3"), r"bad class list '0-3'"),
    (dict(classes=()), r"bad class list"),
])
def test_bad_settings_are_refused_where_the_config_is_made(kw, message):
    """Every value is checked in RunConfig, so a bad one fails before any data loads or any epoch trains."""
    with pytest.raises(ConfigError, match=message):
        RunConfig("finetune", "aircraft", **kw)


def test_l2sp_terms_given_alone_keep_their_value_and_the_other_is_off():
    alpha = RunConfig("finetune", "aircraft", alpha=0.01).resolved()
    assert (alpha.alpha, alpha.beta) == (0.01, 0.0)
    beta = RunConfig("finetune", "aircraft", beta=0.02).resolved()
    assert (beta.alpha, beta.beta) == (0.0, 0.02)


@pytest.mark.parametrize("run_json", sorted(run for store in ("imagenet-cpu", "imagenet") for run in (
    paths.project_root() / "results" / store).glob("runs/*/run.json")), ids=lambda p: p.parent.name)
def test_the_imagenet_stores_keep_their_digests(run_json):
    """Fields added since (allow_fewer) leave stored digests alone while at their default."""
    row = json.loads(run_json.read_text())
    assert RunConfig.from_dict(row["config"]).digest() == row["digest"] == run_json.parent.name


def test_a_backbone_other_than_the_first_is_part_of_the_identity(monkeypatch):
    monkeypatch.setitem(BACKBONES.items, "other", BACKBONES.get("resnet26"))
    a = RunConfig(method="finetune", dataset="aircraft")
    b = RunConfig(method="finetune", dataset="aircraft", backbone="other")
    assert a.digest() != b.digest() and RunConfig.from_dict(b.to_dict()).digest() == b.digest()


def test_parse_classes():
    assert parse_classes("1-3,7") == (1, 2, 3, 7)
    assert parse_classes(None) is None
    with pytest.raises(ConfigError, match="bad class list"):
        parse_classes("a-b")
    with pytest.raises(ConfigError, match="inverted"):
        parse_classes("1-3,10-5")


def test_class_spec():
    assert class_spec(range(1, 51)) == "1-50" and class_spec((1, 3)) == "1,3" and class_spec(None) == "all"


def test_low_resolution_crop_must_fit_the_strides():
    with pytest.raises(ConfigError, match="multiple of 8"):
        RunConfig("finetune", "toy", crop=36)
    assert eval_side(64) == 72 and eval_side(32) == 40


def test_input_size_is_part_of_the_identity_only_when_set():
    a = RunConfig(method="finetune", dataset="aircraft")
    assert a.digest() == RunConfig(method="finetune", dataset="aircraft", input_size=None).digest()
    assert a.digest() != RunConfig(method="finetune", dataset="aircraft", input_size=128).digest()


def test_the_paper_protocol_is_the_default_and_released_follows_the_authors_code():
    paper = RunConfig(method="multitune", dataset="aircraft").resolved()
    assert (paper.protocol, paper.l2sp_scope, paper.trunk, paper.lr_b, paper.augment, paper.draw) == \
        ("paper", "eq2", "two", "kept", "crop_flip", "seeded")
    assert (paper.batch_size, paper.weight_decay) == (128, 0.0)
    released = RunConfig(method="multitune", dataset="aircraft", protocol="released").resolved()
    assert (released.l2sp_scope, released.trunk, released.lr_b, released.augment, released.draw) == \
        ("released", "shared", "lost", "flip_both", "first_n")
    assert (released.batch_size, released.weight_decay) == (120, 5e-4)  # SGD weight decay back, as in its code
    assert RunConfig(method="multitune", dataset="cifar100", protocol="released").resolved().weight_decay == 0.0
    s = RunConfig(method="spottune", dataset="aircraft", protocol="released").resolved()
    assert (s.lr_steps, s.augment, s.sample_eval, s.draw, s.batch_size) == ("first", "none", True, "first_n", 128)
    assert RunConfig(method="spottune", dataset="aircraft").resolved().sample_eval is False


def test_each_switch_overrides_its_protocol_on_its_own():
    one = RunConfig(method="multitune", dataset="aircraft", trunk="shared").resolved()
    assert (one.trunk, one.l2sp_scope, one.augment) == ("shared", "eq2", "crop_flip")
    back = RunConfig(method="multitune", dataset="aircraft", protocol="released", augment="crop_flip").resolved()
    assert (back.augment, back.trunk) == ("crop_flip", "shared")
    assert len({RunConfig(method="multitune", dataset="aircraft", **kw).digest() for kw in
                ({}, {"trunk": "shared"}, {"lr_b": "lost"}, {"draw": "first_n"}, {"protocol": "released"})}) == 5


@pytest.mark.parametrize("field, value, valid", [("protocol", "authors", "paper, released"),
                                                 ("augment", "mixup", "crop_flip, flip_both, none"),
                                                 ("l2sp_scope", "all", "eq2, reinit_new, released"),
                                                 ("draw", "random", "seeded, first_n")])
def test_an_unknown_protocol_or_switch_value_lists_the_valid_ones(field, value, valid):
    with pytest.raises(ConfigError, match=f"{field} must be one of {valid}; got '{value}'"):
        RunConfig(method="multitune", dataset="aircraft", **{field: value})


def test_a_method_without_released_code_refuses_the_released_protocol():
    with pytest.raises(ConfigError, match="no released code to follow: use protocol paper"):
        RunConfig(method="l2sp", dataset="aircraft", protocol="released")


def test_multitune_runs_stored_before_the_l2sp_switch_keep_their_digest_and_scope():
    old = RunConfig(method="multitune", dataset="aircraft", l2sp_scope="reinit_new").resolved().to_dict()
    for k in ("protocol", "l2sp_scope", "augment", "trunk", "lr_b", "lr_steps", "draw"):
        del old[k]  # as a store written before these fields existed holds it
    cfg = RunConfig.from_dict(old)
    assert cfg.l2sp_scope == "reinit_new"
    assert cfg.digest() == RunConfig(method="multitune", dataset="aircraft", l2sp_scope="reinit_new").digest()
    assert cfg.digest() != RunConfig(method="multitune", dataset="aircraft").digest()  # the paper's scope is new


def test_an_unknown_route_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="route must be one of all, residual; got 'skip'"):
        RunConfig(method="spottune", dataset="aircraft", route="skip")


@pytest.mark.parametrize("field, value, readers", [("route", "residual", "spottune"),
                                                    ("policy_width", 1.0, "spottune, amf")])
def test_spottune_settings_on_a_method_that_does_not_read_them_are_refused(field, value, readers):
    with pytest.raises(ConfigError, match=f"{field} is a setting of {readers}; method multitune does not read it"):
        RunConfig(method="multitune", dataset="aircraft", **{field: value})


def test_route_residual_on_a_backbone_without_residual_units_is_one_clear_error(monkeypatch):
    class Plain(BACKBONES.get("resnet26")(1).__class__):
        def residual_blocks(self):
            return []
    monkeypatch.setitem(BACKBONES.items, "plain_for_test", lambda n: Plain(n))
    RunConfig(method="spottune", dataset="aircraft", backbone="plain_for_test", route="all")
    with pytest.raises(ConfigError, match="backbone plain_for_test has no unit with an identity path to route; "
                                          "use route all"):
        RunConfig(method="spottune", dataset="aircraft", backbone="plain_for_test", route="residual")


def test_spottune_runs_stored_before_route_keep_their_digest_and_a_new_route_or_width_is_a_new_run():
    old = RunConfig(method="spottune", dataset="aircraft").resolved().to_dict()
    del old["route"], old["policy_width"]  # as a store written before these fields holds it
    assert RunConfig.from_dict(old).resolved().route == "all"
    digests = {RunConfig(method="spottune", dataset="aircraft", **kw).digest() for kw in
               ({}, {"route": "all"}, {"policy_width": 1.0}, {"route": "residual"}, {"policy_width": 0.5})}
    assert RunConfig.from_dict(old).digest() in digests and len(digests) == 2  # resnet26: residual is all, width 1
    lite0 = dict(method="spottune", dataset="aircraft", backbone="efficientnet_lite0")
    assert len({RunConfig(**lite0, **kw).digest() for kw in ({}, {"route": "residual"}, {"policy_width": 1.0})}) == 3


def test_whole_val_at_its_default_leaves_digests_alone_and_milestones_is_a_new_run():
    base = dict(method="finetune", dataset="aircraft", curve_val_images=1000, eval_every=5)
    digests = [RunConfig(**base, **kw).digest() for kw in ({}, {"whole_val": "last"}, {"whole_val": "milestones"})]
    assert digests[0] == digests[1] != digests[2]
    with pytest.raises(ConfigError, match="whole_val"):
        RunConfig(**base, whole_val="every")


@pytest.mark.parametrize("kw, whole, validated", [
    (dict(method="multitune"), {20, 50, 80, 110}, [*range(5, 111, 5)]),  # the paper's milestones, all multiples of 5
    (dict(method="spottune"), {40, 60, 80, 110}, [*range(5, 111, 5)]),
    (dict(method="finetune", milestones=(8, 12), epochs=15), {8, 12, 15}, [5, 8, 10, 12, 15]),
    (dict(method="spottune", lr_steps="first"), {40, 110}, [*range(5, 111, 5)]),  # the lr steps once
    (dict(method="finetune", whole_val="last"), {110}, [*range(5, 111, 5)]),
])
def test_the_epochs_validated_and_those_on_the_whole_split(kw, whole, validated):
    cfg = RunConfig(dataset="aircraft", **{"eval_every": 5, "whole_val": "milestones", **kw}).resolved()
    assert cfg.validated_on_whole() == whole and cfg.validated() == validated
