"""Checkpoints: the official residual_adapters .t7 (rebuilt here with stand-in classes) and the project format."""
from __future__ import annotations

import copy
import sys
import types
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from multitune_lib.backbones.resnet26 import resnet26
from multitune_lib.errors import CheckpointError
from multitune_lib.store.checkpoint import load_official_t7, load_source, save_source

BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


# --- Minimal equivalents of the residual_adapters code (modules `models` and `config_task`). ---

class Config:
    __module__ = "config_task"

    def __init__(self):
        self.mode, self.task = "normal", 0


class conv_task(nn.Module):  # noqa: N801 (the original's name)
    __module__ = "models"

    def __init__(self, cin, cout, stride=1, nb_tasks=2, adapters=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.adapters = adapters
        if adapters:  # 1x1 parallel adapters, as in residual_adapters' 'parallel_adapters' mode
            self.parallel_conv = nn.ModuleList(nn.Conv2d(cin, cout, 1, stride, bias=False) for _ in range(nb_tasks))
        self.bns = nn.ModuleList(nn.BatchNorm2d(cout) for _ in range(nb_tasks))

    def forward(self, x):
        y = self.conv(x)
        if self.adapters:
            y = y + self.parallel_conv[0](x)
        return self.bns[0](y)


class DownsampleB(nn.Module):
    __module__ = "models"

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.avg = nn.AvgPool2d(stride)
        self.expand_ratio = cout // cin

    def forward(self, x):
        x = self.avg(x)
        return torch.cat([x] + [x.mul(0)] * (self.expand_ratio - 1), 1)


class BasicBlock(nn.Module):
    __module__ = "models"

    def __init__(self, cin, cout, stride, adapters):
        super().__init__()
        self.conv1 = conv_task(cin, cout, stride, adapters=adapters)
        self.conv2 = nn.Sequential(nn.ReLU(), conv_task(cout, cout, 1, adapters=adapters))
        self.shortcut = DownsampleB(cin, cout, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        res = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv2(self.conv1(x)) + res)


class ResNet(nn.Module):
    __module__ = "models"

    def __init__(self, stem=32, blocks=4, adapters=False):
        super().__init__()
        self.config = Config()
        self.pre_layers_conv = conv_task(3, stem, adapters=adapters)
        cin = stem
        for s, width in enumerate((64, 128, 256)):
            layer = []
            for i in range(blocks):
                layer.append(BasicBlock(cin, width, 2 if i == 0 else 1, adapters))
                cin = width
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        # The release has one (BN, ReLU) per task in a ModuleList; the brief's variant is a bare Sequential.
        bn_relu = lambda: nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU())  # noqa: E731
        self.end_bns = nn.ModuleList([bn_relu(), bn_relu()]) if adapters else bn_relu()
        self.linears = nn.ModuleList([nn.Linear(cin, 10)])

    def end_bn(self):
        return (self.end_bns[0] if isinstance(self.end_bns, nn.ModuleList) else self.end_bns)[0]

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.pre_layers_conv(x))))
        x = (self.end_bns[0] if isinstance(self.end_bns, nn.ModuleList) else self.end_bns)(x)
        return self.linears[0](x.mean((2, 3)))


def _fake_module(name, **classes):
    mod = types.ModuleType(name)
    for cls_name, cls in classes.items():
        setattr(mod, cls_name, cls)
    return mod


FAKE_MODULES = {
    "models": _fake_module("models", ResNet=ResNet, BasicBlock=BasicBlock, conv_task=conv_task, DownsampleB=DownsampleB),
    "config_task": _fake_module("config_task", Config=Config),
}


def write_official(path, *, stem=32, blocks=4, adapters=False, dataparallel=False, payload=None):
    """Save `{'net': model}` as the release did (legacy format, protocol 2); return the (unwrapped) model.

    `payload`, an attribute of the saved object, lets the safety tests plant a malicious object in it."""
    torch.manual_seed(0)
    net = ResNet(stem, blocks, adapters).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
                m.weight.zero_()  # adapters off, so resnet26 must reproduce the output
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)
                if adapters:  # PyTorch 0.3 BNs have no counter
                    del m._buffers["num_batches_tracked"]
    obj = nn.DataParallel(copy.deepcopy(net)) if dataparallel else net
    if payload is not None:  # after the deepcopy, which would reduce (run) it
        obj.payload = payload
    sys.modules.update(FAKE_MODULES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch cannot find the source of the fake modules
            torch.save({"net": obj}, path, _use_new_zipfile_serialization=False, pickle_protocol=2)
    finally:
        for name in FAKE_MODULES:
            del sys.modules[name]  # loading must work without the original code
    return net


VARIANTS = [dict(), dict(dataparallel=True), dict(adapters=True), dict(adapters=True, dataparallel=True)]


@pytest.mark.parametrize("variant", VARIANTS, ids=["plain", "dataparallel", "adapters", "adapters-dp"])
def test_official_t7_maps_convs_and_task0_bns_in_order(tmp_path, variant):
    path = tmp_path / "resnet26_pretrained.t7"
    net = write_official(path, **variant)
    assert "models" not in sys.modules and "config_task" not in sys.modules
    state = load_official_t7(path)

    target = resnet26(10)
    assert list(state) == [k for k in target.state_dict() if not k.startswith("fc.")]
    tasks = [m for m in net.modules() if isinstance(m, conv_task)]
    dst_convs = [n for n, m in target.named_modules() if isinstance(m, nn.Conv2d)]
    dst_bns = [n for n, m in target.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(dst_convs) == len(tasks) == 25
    for name, task in zip(dst_convs, tasks):
        assert torch.equal(state[f"{name}.weight"], task.conv.weight)
    for name, bn in zip(dst_bns, [t.bns[0] for t in tasks] + [net.end_bn()], strict=True):
        for f in BN_FIELDS:
            assert torch.equal(state[f"{name}.{f}"], getattr(bn, f))
        assert state[f"{name}.num_batches_tracked"].item() == (0 if variant.get("adapters") else 7)
    assert not torch.equal(state["bn1.weight"], tasks[0].bns[1].weight)  # task 1 differs: index 0 was chosen


@pytest.mark.parametrize("variant", VARIANTS, ids=["plain", "dataparallel", "adapters", "adapters-dp"])
def test_resnet26_reproduces_official_forward(tmp_path, variant):
    path = tmp_path / "resnet26_pretrained.t7"
    net = write_official(path, **variant)
    model = resnet26(10).eval()
    model.load_source(load_official_t7(path))
    model.fc.load_state_dict(net.linears[0].state_dict())
    x = torch.randn(4, 3, 8, 8)  # small: three stride-2 stages still leave 1x1
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant, message", [
    (dict(stem=48), "conv 0 (pre_layers_conv.conv.weight) has shape (48, 3, 3, 3), resnet26 expects (32, 3, 3, 3)"),
    (dict(blocks=3), "has 19 conv layers, resnet26 expects 25"),
])
def test_official_t7_mismatch_names_file_and_layer(tmp_path, variant, message):
    path = tmp_path / "other.t7"
    write_official(path, **variant)
    with pytest.raises(CheckpointError, match="resnet26 expects") as err:
        load_official_t7(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_official_t7_rejects_garbage_and_missing_net(tmp_path):
    garbage = tmp_path / "garbage.t7"
    garbage.write_bytes(b"not a pickle at all" * 10)
    with pytest.raises(CheckpointError, match="cannot be unpickled") as err:
        load_official_t7(garbage)
    assert str(garbage) in str(err.value)
    with pytest.raises(CheckpointError, match="cannot be unpickled"):
        load_source(garbage)

    no_net = tmp_path / "no_net.t7"
    torch.save({"state": 1}, no_net, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="no 'net' entry") as err:
        load_official_t7(no_net)
    assert str(no_net) in str(err.value)


def _backbone_state():
    torch.manual_seed(1)
    model = resnet26(10)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        nn.init.normal_(bn.weight), nn.init.normal_(bn.bias)
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    return model.state_dict()


@pytest.mark.parametrize("half", [False, True])
def test_source_round_trip_drops_fc(tmp_path, half):
    state, meta = _backbone_state(), {"dataset": "imagenet32", "epochs": 3}
    path = tmp_path / "src.pt"
    save_source(path, state, meta, half=half)
    loaded, loaded_meta = load_source(path)
    assert loaded_meta == meta
    assert list(loaded) == [k for k in state if not k.startswith("fc.")]
    for k, v in loaded.items():
        assert v.dtype == state[k].dtype
        tol = dict(rtol=1e-3, atol=1e-5) if half else dict(rtol=0, atol=0)
        torch.testing.assert_close(v, state[k], **tol)
    resnet26(5).load_source(loaded)


def test_load_source_reads_official_t7(tmp_path):
    path = tmp_path / "resnet26_pretrained.t7"
    write_official(path)
    state, meta = load_source(path)
    assert meta == {"origin": "official-t7", "path": str(path)}
    official = load_official_t7(path)
    assert list(state) == list(official) and all(torch.equal(v, official[k]) for k, v in state.items())


def test_load_source_reads_plain_state_dicts_and_rejects_other_torch_files(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in _backbone_state().items()}, path)
    state, meta = load_source(path)  # the backbone maps the names (efficientnet_lite0's ImageNet weights)
    assert meta["origin"] == "state-dict" and state["conv1.weight"].dtype == torch.float32
    torch.save({"epoch": 3, "weights": [1, 2]}, path)
    with pytest.raises(CheckpointError, match="neither a multitune-source/1 checkpoint.*a plain state dict"):
        load_source(path)


def test_missing_path_says_where_weights_come_from(tmp_path):
    path = tmp_path / "nope" / "resnet26_pretrained.t7"
    with pytest.raises(CheckpointError) as err:
        load_source(path)
    msg = str(err.value)
    assert str(path) in msg and "resnet26_pretrained.t7" in msg and "SpotTune" in msg
    assert "python -m multitune_lib pretrain" in msg


def test_backbone_load_source_reports_missing_unexpected_and_shapes():
    state = _backbone_state()
    del state["bn1.running_var"]
    state["extra.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(48, 3, 3, 3)
    with pytest.raises(CheckpointError) as err:
        resnet26(10).load_source(state)
    msg = str(err.value)
    assert "missing: bn1.running_var" in msg and "unexpected: extra.weight" in msg
    assert "conv1.weight (48, 3, 3, 3) vs model (32, 3, 3, 3)" in msg


def test_backbone_load_source_of_a_foreign_network_is_one_short_line(tmp_path):
    path = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    state, _ = load_source(path)
    with pytest.raises(CheckpointError) as err:
        resnet26(10).load_source(state)
    msg = str(err.value)
    assert len(msg) < 600 and "\n" not in msg and "does not fit ResNet26" in msg
    assert "149 missing: blocks.0.conv1.weight" in msg and "... and 145 more" in msg
    assert "114 unexpected: layer1.0.conv1.weight" in msg and "5 with another shape: conv1.weight" in msg
