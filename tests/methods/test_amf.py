"""AMF (reconstructed): per-image weights over several fine-tuned networks, fused as MultiTune's Eq. 1."""
import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import policy_gradient
from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.core.config import RunConfig
from multitune_lib.core.method import build as build_method
from multitune_lib.errors import ConfigError
from multitune_lib.methods import AMF, MultiTune
from multitune_lib.methods.amf import TOP

CLASSES = 10


def build(**kw):
    torch.manual_seed(0)
    return build_method(RunConfig(method="amf", dataset="aircraft", **kw), lambda: resnet26(CLASSES), CLASSES)


def force(model: AMF, logits: torch.Tensor) -> None:
    """Make the policy give `logits` for every image."""
    with torch.no_grad():
        model.policy.fc.weight.zero_()
        model.policy.fc.bias.copy_(logits)


@pytest.mark.parametrize("weighting", ["soft", "hard"])
def test_the_weights_sum_to_one_per_image_in_training_and_evaluation(weighting):
    model = build(weighting=weighting, amf_settings="A B finetune")[0].model
    logits = torch.randn(6, 3)
    for mode in (True, False):
        w = model.train(mode).weights(logits)
        assert w.shape == (6, 3) and torch.allclose(w.sum(-1), torch.ones(6))
        assert weighting == "soft" or set(w.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("fusion", ["features", "logits"])
def test_a_one_hot_policy_gives_that_networks_output_alone(fusion):
    model = build(weighting="hard", fusion=fusion)[0].model.eval()
    force(model, torch.tensor([0.0, 5.0]))  # network 1 for every image
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        feats = model.nets[1].features(x)
        alone = model.fc(torch.cat([torch.zeros_like(feats), feats], 1)) if fusion == "features" \
            else model.heads[1](feats)
        assert torch.allclose(model(x), alone, atol=1e-5)
    assert model.policy_record()["share.1"] == 1.0 and model.policy_record()["share.0"] == 0.0


def test_two_networks_weighted_eta_and_one_minus_eta_are_multitunes_eq1():
    model = build()[0].model.eval()
    eta = 0.3
    model.weights = lambda logits: torch.tensor([eta, 1 - eta]).expand(len(logits), 2)
    multitune = MultiTune(model.nets[0], model.nets[1], CLASSES, eta).eval()
    multitune.fc.load_state_dict(model.fc.state_dict())
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), multitune(x), atol=1e-6)


@pytest.mark.parametrize("weighting", ["soft", "hard"])
def test_gradients_reach_the_policy(weighting):
    built, reg = build(weighting=weighting)
    model = built.model.train()
    loss = F.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.arange(4)) + reg()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters() if p.dim() > 1)


def test_each_network_trains_with_its_setting():
    built, reg = build(amf_settings=("A", "B", "finetune"))
    lrs = {g["name"]: (g["lr"], g["weight_decay"]) for g in built.groups}
    assert lrs["net0_new"] == (0.1, 0.0) and lrs["net1_new"] == (0.01, 0.0)  # MultiTune's A and B
    assert lrs["net2"] == (0.1, 5e-4) and "net2_new" not in lrs  # plain fine-tuning: SGD decay, nothing fresh
    assert lrs["policy"] == (0.01, 1e-3)
    regularised = {id(p) for p in reg.source + reg.new}
    model = built.model
    assert not any(id(p) in regularised for p in model.nets[2].parameters())  # no L2-SP on plain fine-tuning
    assert not any(id(p) in regularised for p in model.policy.parameters())
    assert all(id(p) in regularised for p in (model.nets[0].blocks[-1].conv1.weight, model.fc.weight))


@pytest.mark.parametrize("kw, message", [
    (dict(amf_settings=("A",)), r"amf_settings needs at least two fine-tuning settings, got \['A'\]"),
    (dict(amf_settings=("A", "C")), r"unknown fine-tuning setting 'C': choose one of A, B, finetune"),
    (dict(weighting="mixed"), r"weighting must be one of soft, hard; got 'mixed'"),
    (dict(fusion="votes"), r"fusion must be one of features, logits; got 'votes'"),
])
def test_bad_amf_settings_are_one_clear_error(kw, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(method="amf", dataset="aircraft", **kw)


def test_amf_settings_are_refused_on_other_methods_and_are_part_of_the_identity():
    with pytest.raises(ConfigError, match="amf_settings is a setting of amf; method multitune does not read it"):
        RunConfig(method="multitune", dataset="aircraft", amf_settings=("A", "B"))
    digests = {RunConfig(method="amf", dataset="aircraft", **kw).digest() for kw in
               ({}, {"amf_settings": "A,B"}, {"amf_settings": ("A", "B", "finetune")}, {"weighting": "hard"},
                {"fusion": "logits"})}
    assert len(digests) == 4


def test_the_record_keeps_the_images_the_policy_weights_most_to_each_network():
    model = build()[0].model
    model.eval()
    soft = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]] * 4)  # 12 images in two batches, in order
    model.record(soft[:5])
    model.record(soft[5:])
    top = model.policy_record()
    network0 = [int(i) for i in top["top.0"].split()]
    assert len(network0) == TOP and set(network0[:4]) == {0, 3, 6, 9}  # the 0.9s, then the 0.6s
    assert set(int(i) for i in top["top.1"].split()[:4]) == {1, 4, 7, 10}
    model.eval()  # entering evaluation again forgets the last split
    model.record(soft[:2])
    assert model.policy_record()["top.0"] == "0 1"


def test_the_policy_gradient_under_bf16_autocast_matches_a_float64_reference():
    """Two networks from one source, as AMF trains them: the policy runs in float32 whatever the autocast, so its
    gradient under bf16 agrees with a float64 reference (with the policy in bf16 the cosine is about 0.987)."""
    torch.manual_seed(0)
    source = resnet26(CLASSES)
    model = build_method(RunConfig(method="amf", dataset="aircraft"), lambda: copy.deepcopy(source), CLASSES)[0].model
    x, y = torch.randn(8, 3, 64, 64), torch.arange(8)
    reference = policy_gradient(copy.deepcopy(model).double().train(), x.double(), y)
    cosine = float(F.cosine_similarity(policy_gradient(model.train(), x, y, torch.bfloat16), reference, 0))
    assert cosine > 0.999

