"""Loading a source checkpoint runs no code from it: a malicious pickle, in any format, is one clear CheckpointError."""
from __future__ import annotations

import collections
import os
import pathlib
import pickle

import pytest
import torch
from torch import nn

from multitune_lib.errors import CheckpointError
from multitune_lib.store.checkpoint import SOURCE_FORMAT, load_official_t7, load_source
from multitune_lib.tools import cli
from test_checkpoint import VARIANTS, write_official


class Touch:
    """Unpickled, it creates `marker`: an attack that leaves a trace and does no harm."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


class System(Touch):
    """The same through a shell."""

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _project(path, payload):  # our format, as torch.save writes it today (a zip archive)
    torch.save({"format": SOURCE_FORMAT, "state_dict": {"w": torch.ones(2)}, "meta": {"x": payload}}, path)


def _legacy(path, payload):  # the same in torch.save's format before PyTorch 1.6
    torch.save({"format": SOURCE_FORMAT, "state_dict": {"w": torch.ones(2)}, "meta": {"x": payload}}, path,
               _use_new_zipfile_serialization=False)


def _official(path, payload):  # a genuine-looking official .t7 whose model carries the payload
    write_official(path, payload=payload)


def _raw(path, payload):  # a bare pickle, not torch.save at all
    path.write_bytes(pickle.dumps({"net": payload}))


FORMATS = {"project-zip": _project, "legacy": _legacy, "official-t7": _official, "raw-pickle": _raw}
# What the error names: torch's weights_only check and our unpickler each name the first global they refuse.
REFUSED = {Touch: ("getattr", "pathlib.Path.touch"), System: ("posix.system", "nt.system")}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # weights_only on the raw pickle (protocol 4)
@pytest.mark.parametrize("payload", [Touch, System])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("loader", [load_source, load_official_t7], ids=["load_source", "load_official_t7"])
def test_a_malicious_checkpoint_runs_nothing_and_is_one_clear_error(tmp_path, loader, fmt, payload):
    marker, evil = tmp_path / "pwned", tmp_path / f"{fmt}.t7"
    FORMATS[fmt](evil, payload(marker))
    with pytest.raises(CheckpointError) as err:
        loader(evil)
    msg = str(err.value)
    assert not marker.exists()
    assert str(evil) in msg and "\n" not in msg and "nothing from" in msg
    if fmt == "project-zip":  # weights_only refuses it; the t7 loader does not even unpickle a zip archive
        expected = "holds more than tensors and plain data" if loader is load_source else "is a zip archive"
    else:
        expected = "is not the official resnet26_pretrained.t7"
    assert expected in msg
    assert expected == "is a zip archive" or any(name in msg for name in REFUSED[payload])


def test_the_cli_reports_a_malicious_source_in_one_line(toy_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MULTITUNE_HOME", str(tmp_path))  # the image cache goes there, not into the checkout
    marker, evil = tmp_path / "pwned", tmp_path / "resnet26_pretrained.t7"
    write_official(evil, payload=System(marker))
    argv = ["run", "--method", "finetune", "--dataset", "toy", "--source", str(evil), "--data-root", str(toy_root),
            "--results", str(tmp_path / "results"), "--device", "cpu", "--epochs", "1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert err.startswith("error: ") and err.count("\n") == 1 and str(evil) in err
    assert any(name in err for name in REFUSED[System])


def _refused_by_the_t7_loader(tmp_path, pickled: bytes) -> str:
    path = tmp_path / "crafted.t7"
    path.write_bytes(pickled)
    with pytest.raises(CheckpointError) as err:
        load_official_t7(path)
    return str(err.value)


def test_the_t7_loader_alters_no_global(tmp_path):
    # BUILD with the state (None, {'__defaults__': ({},)}) on a function it allows: every later load in the process
    # would rebuild tensors with this metadata.
    build_on_function = b"ctorch._utils\n_rebuild_tensor_v2\n(N}S'__defaults__'\n(}tstb."
    assert "sets the state of a function object" in _refused_by_the_t7_loader(tmp_path, build_on_function)
    assert torch._utils._rebuild_tensor_v2.__defaults__ == (None,)


@pytest.mark.parametrize("pickled", [b"ctorch.nn.modules.activation\nReLU\n)R(I1\ntR.",  # REDUCE: ReLU()(1)
                                     b"(ctorch.nn.modules.activation\nReLU\n)RI1\no."],  # OBJ: the same
                         ids=["reduce", "obj"])
def test_the_t7_loader_calls_no_unpickled_module(tmp_path, pickled):
    assert "calls a ReLU object" in _refused_by_the_t7_loader(tmp_path, pickled)  # which would run its forward


def test_the_t7_loader_reads_what_pytorch_0_3_pickled(tmp_path, monkeypatch):
    """PyTorch 0.3 pickled a tensor as _rebuild_tensor(storage, offset, size, stride) and a parameter as
    Parameter(data) with the state (requires_grad, volatile, hooks): the globals the official file names."""
    monkeypatch.setattr(torch.Tensor, "__reduce_ex__", lambda t, proto: (
        torch._utils._rebuild_tensor, (t.storage(), t.storage_offset(), tuple(t.size()), t.stride())))
    monkeypatch.setattr(nn.Parameter, "__reduce_ex__", lambda p, proto: (
        nn.Parameter, (p.data,), (p.requires_grad, False, collections.OrderedDict())))
    nets = {i: write_official(tmp_path / f"{i}.t7", **variant) for i, variant in enumerate(VARIANTS)}
    monkeypatch.undo()
    for i, net in nets.items():
        state = load_official_t7(tmp_path / f"{i}.t7")
        assert torch.equal(state["conv1.weight"], net.pre_layers_conv.conv.weight)
        assert torch.equal(state["bn1.running_var"], net.pre_layers_conv.bns[0].running_var)
