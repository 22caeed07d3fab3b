"""The methods build on the backbone interface, not on ResNet-26: a tiny second backbone, registered here, carries
every method through building, training and an exact resume."""
import pytest
from torch import nn

from multitune_lib import BACKBONES, METHODS, Backbone, RunConfig, fit
from multitune_lib.core.method import build
from multitune_lib.store.checkpoint import load_source
from multitune_lib.store.results import ResultsStore
from multitune_lib.tools.pretrain import pretrain, pretrain_config


class TinyNet(Backbone):
    """A stem and three conv blocks in two stages (the second halves the resolution): 16 features."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList([self.block(8, 8, 1), self.block(8, 16, 2), self.block(16, 16, 1)])
        self.num_features = 16
        self.fc = nn.Linear(16, num_classes)

    @staticmethod
    def block(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def stem(self, x):
        return self.conv(x)

    def pool(self, x):
        return x.mean((2, 3))

    def stages(self):
        return [[0], [1, 2]]

    def init_block(self, index):
        for m in self.blocks[index].modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()


def tiny(num_classes: int) -> TinyNet:
    return TinyNet(num_classes)


class Interrupt(Exception):
    pass


@pytest.fixture
def tiny_source(toy_root, tmp_path, monkeypatch):
    monkeypatch.setitem(BACKBONES.items, "tiny", tiny)
    out = tmp_path / "tiny.pt"
    pretrain(pretrain_config(dataset="toy", classes=None, backbone="tiny", epochs=1, batch_size=16), out=out,
             data_root=toy_root, results=tmp_path / "pretrain", device="cpu")
    return out


@pytest.mark.parametrize("method", ["finetune", "l2sp", "feature", "scratch", "spottune", "multitune"])
def test_every_method_trains_and_resumes_on_a_second_backbone(method, tiny_source, toy_root, tmp_path):
    assert set(METHODS) >= {"finetune", "l2sp", "feature", "scratch", "spottune", "multitune"}
    cfg = RunConfig(method=method, dataset="toy", backbone="tiny", images_per_class=4, epochs=2, batch_size=8)
    source = tiny_source if METHODS.get(method).from_source else None
    kw = dict(data_root=toy_root, source=source, device="cpu", cache=tmp_path / "cache")
    whole = fit(cfg, results=tmp_path / "a", **kw)

    def stop(row):
        raise Interrupt

    with pytest.raises(Interrupt):
        fit(cfg, results=tmp_path / "b", on_epoch=stop, **kw)
    resumed = fit(cfg, results=tmp_path / "b", **kw)
    a, b = ResultsStore(tmp_path / "a").history(), ResultsStore(tmp_path / "b").history()
    cols = ["epoch", "train_loss", "penalty", "val_acc"] + [c for c in a.columns if c.startswith("usage.")]
    assert len(a) == 2 and a[cols].equals(b[cols])
    assert resumed["digest"] == whole["digest"] and resumed["config"]["backbone"] == "tiny"
    if method == "spottune":
        assert {"usage.0", "usage.1", "usage.2"} <= set(a.columns) and "usage.3" not in a.columns


def test_the_backbone_is_part_of_a_runs_identity(tiny_source):
    base = RunConfig(method="finetune", dataset="toy")
    assert base.digest() != RunConfig(method="finetune", dataset="toy", backbone="tiny").digest()
    assert base.digest() == RunConfig(method="finetune", dataset="toy", backbone="resnet26").digest()


def test_methods_address_the_interface_not_resnet26(tiny_source):
    def make():
        net = tiny(5)
        net.load_source(load_source(tiny_source)[0])
        return net

    spot, _ = build(RunConfig(method="spottune", dataset="toy", backbone="tiny"), make, 5)
    assert len(spot.model.frozen) == 3 and spot.model.policy.fc.out_features == 6  # 2 logits per block
    multi, reg = build(RunConfig(method="multitune", dataset="toy", backbone="tiny", reinit="stage",
                                 l2sp_scope="reinit_new"), make, 5)  # the re-initialised blocks named as new
    assert multi.model.fc.in_features == 32
    new = {n for n, _ in multi.model.named_parameters() if n.startswith(tuple(multi.new))}
    assert {"net_a.blocks.1.0.weight", "net_b.blocks.2.0.weight", "fc.weight"} <= new
    assert not any(n.startswith(("net_a.blocks.0.", "net_a.conv.")) for n in new)
    assert reg is not None and reg.source_names  # L2-SP pulls the transferred weights
