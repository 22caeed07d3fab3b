"""The training core on data already in memory: epochs, history rows, evaluation, exact resume, precision."""
import pytest
import torch

from multitune_lib import env
from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core import trainer as trainer_module
from multitune_lib.core.config import RunConfig
from multitune_lib.core.trainer import Trainer, precision_for
from multitune_lib.data import TABLE2_STATS, Split, eval_side
from multitune_lib.errors import CheckpointError, ConfigError


def split(n_per_class=4, classes=3, seed=0) -> Split:
    """Solid colours per class with noise, 72 px like decoded Decathlon images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    base = (labels.view(-1, 1, 1, 1).float() * torch.tensor([80.0, 40.0, 120.0]).view(1, 3, 1, 1)) % 256
    images = (base + 20 * torch.randn(len(labels), 3, 72, 72, generator=g)).clamp(0, 255).to(torch.uint8)
    return Split(images, labels, classes, [f"{i}.jpg" for i in range(len(labels))])


def make(method="finetune", dataset="toy", **kw):
    cfg = RunConfig(method=method, dataset=dataset, **{"epochs": 2, "batch_size": 6, "crop": 16, **kw})
    return Trainer(cfg, split(), split(2, seed=1), device="cpu", precision="fp32")


def test_an_epoch_appends_one_history_row():
    t = make("l2sp")
    row = t.epoch()
    assert row == t.history[0] and row["epoch"] == 1
    assert row["train_loss"] > 0 and row["penalty"] >= 0 and 0 <= row["val_acc"] <= 1
    assert row["lr.net"] == 0.1 and row["train_seconds"] > 0 and row["seconds"] >= row["train_seconds"]
    assert t.train.images.shape[-1] == t.val.images.shape[-1] == eval_side(16) == 24  # whole images, scaled
    t.epoch()
    s = t.summary()
    assert s["train_images"] == 12 and s["val_images"] == 6 and s["num_classes"] == 3
    assert s["best_epoch"] in (1, 2) and s["final_val_acc"] == t.history[-1]["val_acc"]
    assert s["precision"] == "float32" and s["images_per_s"] > 0


def whole_and_resumed(method: str, seed: int) -> tuple[Trainer, Trainer]:
    """Two epochs in one go, and one epoch, then a fresh trainer resumed from its state for the second."""
    whole = make(method, seed=seed)
    for _ in range(2):
        whole.epoch()
    first = make(method, seed=seed)
    first.epoch()
    state = first.state_dict()  # before the next trainer seeds the global RNG that the state holds
    resumed = make(method, seed=seed)
    resumed.load_state_dict(state)
    assert len(resumed.history) == 1
    resumed.epoch()
    return whole, resumed


@pytest.mark.parametrize("method, seed", [("spottune", 2), ("amf", 3)])
def test_resume_from_state_dict_is_exact(method, seed):
    whole, resumed = whole_and_resumed(method, seed)
    timings = ("seconds", "train_seconds")
    assert [{k: v for k, v in r.items() if k not in timings} for r in resumed.history] == \
        [{k: v for k, v in r.items() if k not in timings} for r in whole.history]
    assert all(torch.equal(v, whole.model.state_dict()[k]) for k, v in resumed.model.state_dict().items())
    policy = {"spottune": ["usage.0", "train_usage.0", "policy_updates"], "amf": ["weight.0", "share.1"]}[method]
    assert all(k in resumed.history[-1] for k in policy)


def test_evaluate_counts_top1_on_whole_images():
    t = make()
    acc = t.evaluate()
    assert acc in [i / 6 for i in range(7)]
    assert t.evaluate(t.train) in [i / 12 for i in range(13)]
    assert t.evaluate(Split(t.val.images[:0], t.val.labels[:0], 3, [])) == 0.0


def test_normalisation_is_table2_where_the_paper_gives_it():
    t = make(dataset="aircraft")
    mean, std = TABLE2_STATS["aircraft"]
    torch.testing.assert_close(t.norm.mean.flatten(), torch.tensor(mean) * 255)
    torch.testing.assert_close(t.norm.std.flatten(), torch.tensor(std) * 255)
    toy = make()  # not in Table 2: the train split's own statistics
    x = toy.norm(split().images).float()
    assert x.mean((0, 2, 3)).abs().max() < 1e-3 and (x.std((0, 2, 3)) - 1).abs().max() < 1e-2


def test_an_imagenet_backbone_brings_its_normalisation_and_input_size():
    t = make(dataset="aircraft", backbone="efficientnet_lite0", input_size=32)
    torch.testing.assert_close(t.norm.mean.flatten(), torch.full((3,), 0.5 * 255))  # what the weights were trained on
    assert t.norm.size == 32 and t.norm_eval.size == 48  # the whole 24 px image scaled as the 16 px crop is
    row = t.epoch()
    assert row["val_acc"] is not None and t.summary()["train_images"] == 12


def test_source_weights_reach_every_backbone_the_method_builds():
    torch.manual_seed(5)
    source = {k: v for k, v in resnet26(9).state_dict().items() if not k.startswith("fc.")}
    cfg = RunConfig(method="multitune", dataset="toy", epochs=1, batch_size=6, crop=16)
    t = Trainer(cfg, split(), split(2, seed=1), source_state=source, device="cpu", precision="fp32")
    for net in (t.model.net_a, t.model.net_b):
        assert torch.equal(net.conv1.weight, source["conv1.weight"])
        assert torch.equal(net.blocks[10].conv2.weight, source["blocks.10.conv2.weight"])
        assert not torch.equal(net.blocks[11].conv1.weight, source["blocks.11.conv1.weight"])  # re-initialised
    bad = {k: v for k, v in source.items() if k != "bn1.running_var"}
    with pytest.raises(CheckpointError, match="missing: bn1.running_var"):
        Trainer(cfg, split(), split(2, seed=1), source_state=bad, device="cpu", precision="fp32")


def test_precision_for(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision_for(cpu, "fp32") is None and precision_for(cuda, "fp32") is None
    assert precision_for(cpu, "bf16") == torch.bfloat16 and precision_for(cuda, "auto") == torch.bfloat16
    monkeypatch.setattr(env, "cpu_has_bf16", lambda: False)
    assert precision_for(cpu, "auto") is None
    monkeypatch.setattr(env, "cpu_has_bf16", lambda: True)
    assert precision_for(cpu, "auto") == torch.bfloat16
    for device in (cpu, cuda):  # fp16 used to come back as bf16 wherever bf16 was the default
        with pytest.raises(ConfigError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
            precision_for(device, "fp16")


def test_result_row_holds_config_metrics_environment_and_tags():
    t = make(epochs=1)
    t.epoch()
    row = trainer_module.result_row(t, t.cfg.digest(), None, {"profile": "x"})
    assert row["digest"] == t.cfg.digest() and row["config"] == t.cfg.to_dict() and row["source"] is None
    assert row["metrics"] == t.summary() and row["tags"] == {"profile": "x"}
    assert row["env"]["device"] == "cpu" and row["env"]["torch"] == torch.__version__ and row["finished_at"]


def test_a_cpu_run_records_the_kernels_its_cpu_runs_beside_its_name(monkeypatch):
    # one CPU name covers machines with AMX and without bf16 instructions: the features tell them apart
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(env, "device_name", lambda device: "a card")  # no CUDA driver needed to name one
    for flags, onednn, said in (("avx2 avx512f amx_bf16 avx512_bf16", True, "AVX512, bf16 AMX"),
                                ("avx2 avx512f avx512_bf16", True, "AVX512, bf16 AVX512-BF16"),
                                ("avx2 avx512f", True, "AVX512, bf16 emulated"), ("avx2", False, "AVX512, bf16 none"),
                                ("", True, "AVX512, bf16 supported")):
        monkeypatch.setattr(env, "cpuinfo", lambda field, flags=flags: flags if field == "flags" else "")
        monkeypatch.setattr(env, "cpu_has_bf16", lambda onednn=onednn: onednn)
        assert env.environment(torch.device("cpu"))["cpu_features"] == said
    assert "cpu_features" not in env.environment(torch.device("cuda"))


def test_curve_validations_use_a_fixed_sample_and_the_last_the_whole_split():
    t = make(curve_val_images=2, epochs=2)
    first, last = t.epoch(), t.epoch()
    assert first["val_images"] == 2 and last["val_images"] == 6
    assert t.summary()["best_epoch"] == 2  # the best is read among whole-split validations only
    again = make(curve_val_images=2, epochs=2, seed=5)
    assert again.curve_val.files == t.curve_val.files  # the same sample for every seed and method


def test_whole_val_milestones_validates_the_whole_split_at_each_lr_step_and_picks_the_best_among_them():
    t = make(curve_val_images=2, epochs=5, eval_every=4, milestones=(1, 3), whole_val="milestones")
    rows = [t.epoch() for _ in range(5)]
    assert [r["val_images"] for r in rows] == [6, None, 6, 2, 6]  # 1 and 3 end an lr, 4 the sample, 5 the last
    t.history[0]["val_acc"], t.history[3]["val_acc"] = 1.0, 1.0  # the sample's epoch 4 is never the best
    assert t.summary()["best_epoch"] == 1 and t.summary()["best_val_acc"] == 1.0
    last = make(curve_val_images=2, epochs=3, eval_every=2, milestones=(1,))
    assert [last.epoch()["val_images"] for _ in range(3)] == [None, 2, 6]  # the default: the last epoch alone


def test_lr_steps_first_applies_gamma_at_the_first_milestone_only():
    """SpotTune's code steps its lr at epoch 40 and never again (an if/if/if bug): lr_steps first."""
    lrs = {}
    for steps in ("all", "first"):
        t = make("finetune", epochs=4, milestones=(1, 2), lr_steps=steps, eval_every=4)
        lrs[steps] = [t.epoch()["lr.net"] for _ in range(4)]
    assert lrs["all"] == pytest.approx([0.1, 0.01, 0.001, 0.001])
    assert lrs["first"] == pytest.approx([0.1, 0.01, 0.01, 0.01])


def test_augment_none_trains_on_whole_images_and_flip_both_flips_at_evaluation_too():
    none = make("finetune", augment="none")
    assert none.augment.crop == 24 and none.eval_flip is None and none.norm.size is None
    x = none.train.images[:4]
    assert torch.equal(none.augment(x, none.gen), x)
    both = make("finetune", augment="flip_both")
    assert both.eval_flip is not None and both.augment.crop == 24
    accs = [both.evaluate() for _ in range(2)]  # seeded flips at evaluation, apart from training's draws
    again = make("finetune", augment="flip_both")
    assert [again.evaluate() for _ in range(2)] == accs
    assert both.gen.get_state().equal(torch.Generator().manual_seed(0).get_state())


def test_whole_image_training_is_resized_as_evaluation_is():
    t = make("finetune", augment="none", input_size=32)
    assert t.norm.size == t.norm_eval.size == 48  # 24 px whole images x 32/16
    assert make("finetune", input_size=32).norm.size == 32  # crops: the input size itself


def test_a_spottune_history_records_training_time_routing_every_epoch_and_validation_usage_when_validated():
    t = make("spottune", eval_every=2)
    first, second = t.epoch(), t.epoch()
    routed = range(12)
    for row in (first, second):
        assert row["policy_updates"] == 2  # 12 images in batches of 6
        assert all(0 <= row[f"train_usage.{b}"] <= 1 and 0 <= row[f"train_entropy.{b}"] <= 1 for b in routed)
    assert "usage.0" not in first and all(f"usage.{b}" in second for b in routed)


def test_a_run_names_the_parts_its_method_keeps_in_fp32_under_bf16():
    cfg = RunConfig(method="spottune", dataset="toy", epochs=1, batch_size=6, crop=16)
    t = Trainer(cfg, split(), split(2, seed=1), device="cpu", precision="bf16")
    assert t.precision() == "bfloat16 (all but the head in float32)"
    assert make("spottune").precision() == "float32"

