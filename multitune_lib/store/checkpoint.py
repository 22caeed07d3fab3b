"""Backbone checkpoints: the official Decathlon/SpotTune `resnet26_pretrained.t7`, the project's own format, and plain
state dicts (the EfficientNet-Lite0 ImageNet weights).

Source checkpoints are downloaded files, so loading one never runs code from it: our format and state dicts load with
`torch.load(weights_only=True)`, and the official .t7, a pickle of the whole model in torch's legacy (non-zip) format,
with an unpickler that resolves only the classes and functions that file needs and refuses the rest before it runs."""
from __future__ import annotations

import collections
import json
import os
import pickle
import re
import sys
import types
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.serialization import SourceChangeWarning

from ..backbones.resnet26 import resnet26
from ..errors import CheckpointError, one_line
from .files import torch_save

SOURCE_FORMAT = "multitune-source/1"
OFFICIAL_NAME = "resnet26_pretrained.t7"
SOURCES = (f"expected a {SOURCE_FORMAT} checkpoint (written by save_source), a plain state dict or the official "
           f"{OFFICIAL_NAME}")


class _StandIn(nn.Module):
    """Takes the place of any residual_adapters class: unpickling only restores its attributes and submodules."""

    def __init__(self, *args, **kwargs):  # in case a pickle calls the class with arguments
        super().__init__()


# Besides the stand-ins and torch.nn layers, all that a legacy torch.save of the residual_adapters model refers to.
# Storage classes are not here: torch resolves every name containing "Storage" itself before asking the unpickler.
_OFFICIAL_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),  # a tensor, as PyTorch 0.3 pickled it
    ("torch.nn.parameter", "Parameter"),  # a parameter, as PyTorch 0.3 pickled it: Parameter(data) and its state
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),  # both, by later PyTorch
    ("__builtin__", "set"), ("builtins", "set"),  # Module._non_persistent_buffers_set (PyTorch >= 1.6)
}


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something the official file never does."""


def _layer_class(module: str, name: str) -> type | None:
    """An nn.Module subclass of torch.nn.modules, among the modules torch has imported: nothing is imported here."""
    found = getattr(sys.modules.get(module), name, None) if module.startswith("torch.nn.modules.") else None
    return found if isinstance(found, type) and issubclass(found, nn.Module) else None


def _check_callable(func) -> None:
    # Classes and functions reach the stack only through find_class; an unpickled module, called, would run forward.
    if not isinstance(func, (type, types.FunctionType)):
        raise _Refused(f"it calls a {type(func).__name__} object")


class _Opcodes(dict):
    def __missing__(self, code):  # what the C unpickler says, where the pure-Python one raises a bare KeyError
        raise pickle.UnpicklingError(f"invalid load key, {bytes([code])!r}")


class _Unpickler(pickle._Unpickler):
    """Unpickles the official .t7 and refuses anything else before it runs.

    Only the globals that file needs resolve, only they are called, and only modules, tensors and dicts get their
    state set (so no class or function is altered). The pure-Python unpickler, as the C one lets no subclass check
    calls and state."""

    dispatch = _Opcodes(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        # The residual_adapters code is neither installed nor wanted: stand-ins restore attributes and submodules.
        if module.split(".")[0] in ("models", "config_task") or (
            module.startswith("torch.nn.parallel") and name == "DataParallel"
        ):
            return _StandIn
        if (module, name) in _OFFICIAL_GLOBALS:
            return super().find_class(module, name)
        if layer := _layer_class(module, name):
            return layer
        raise _Refused(f"it refers to the global {module}.{name}")

    def _instantiate(self, klass, args):  # the INST and OBJ opcodes
        _check_callable(klass)
        super()._instantiate(klass, args)

    def _reduce(self):
        _check_callable(self.stack[-2])
        self.load_reduce()

    def _build(self):
        inst = self.stack[-2]
        if not isinstance(inst, (nn.Module, torch.Tensor, collections.OrderedDict)):
            raise _Refused(f"it sets the state of a {type(inst).__name__} object")
        self.load_build()

    dispatch[pickle.REDUCE[0]] = _reduce
    dispatch[pickle.BUILD[0]] = _build


def _load(file, **kwargs):
    return _Unpickler(file, **kwargs).load()


# torch.load subclasses `Unpickler` for the object graph and calls `load` for the legacy header, so both are ours.
_PICKLE_MODULE = types.ModuleType("official_t7_pickle")
_PICKLE_MODULE.Unpickler, _PICKLE_MODULE.load = _Unpickler, _load


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist: the official ImageNet-pretrained weights are {OFFICIAL_NAME} "
            "from the SpotTune release, or make one with `python -m multitune_lib pretrain`"
        )
    return path


def _is_task_copy(name: str) -> bool:
    """True for a BN of task > 0: residual_adapters keeps one BN per task in `bns[i]` / `end_bns[i]`."""
    parts = name.split(".")
    return any(p in ("bns", "end_bns") and i + 1 < len(parts) and parts[i + 1] != "0" for i, p in enumerate(parts))


EXPECTED = f"expected the official {OFFICIAL_NAME} of the SpotTune release, a torch.save of {{'net': model}}"


def _is_zip(path: Path) -> bool:
    """True for torch.save's format since PyTorch 1.6, and for TorchScript archives."""
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_official_t7(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict for `resnet26` (without `fc`) from the official Python 2 / PyTorch 0.3 pickle of the model."""
    path = _existing(path)
    if _is_zip(path):  # the official file predates zip archives, and torch.load hands TorchScript ones to jit
        raise CheckpointError(f"{path} is a zip archive, not the official {OFFICIAL_NAME} (a PyTorch 0.3 file): "
                              f"nothing from it was unpickled; {EXPECTED}")
    try:
        with warnings.catch_warnings():  # our stand-ins never match the pickled source; that is the point
            warnings.simplefilter("ignore", SourceChangeWarning)
            ckpt = torch.load(path, map_location="cpu", pickle_module=_PICKLE_MODULE,
                              encoding="latin1", weights_only=False)
    except _Refused as e:
        raise CheckpointError(f"{path} is not the official {OFFICIAL_NAME}: {e}, which that file never does; "
                              "unpickling stopped there and nothing from the file was run") from e
    except Exception as e:
        raise CheckpointError(f"{path} cannot be unpickled ({one_line(e)}); {EXPECTED}") from e
    net = ckpt.get("net") if isinstance(ckpt, dict) else None
    if not isinstance(net, nn.Module):
        raise CheckpointError(f"{path} has no 'net' entry holding a model; {EXPECTED}")

    # Definition order of the residual_adapters model equals resnet26's: stem, blocks (conv1, conv2), end BN.
    # 1x1 convs are adapters, not part of the backbone.
    named = list(net.named_modules())
    target = resnet26(1)
    out = _copy_layers(path, "conv", [(n, m) for n, m in named if isinstance(m, nn.Conv2d) and
                                      tuple(m.kernel_size) == (3, 3)], target, ("weight",))
    out |= _copy_layers(path, "bn", [(n, m) for n, m in named if isinstance(m, nn.BatchNorm2d) and
                                     not _is_task_copy(n)], target, ("weight", "bias", "running_mean", "running_var"))
    return {k: out[k] for k in target.state_dict() if not k.startswith("fc.")}


def _copy_layers(path: Path, kind: str, found: list, target: nn.Module, fields: tuple) -> dict[str, torch.Tensor]:
    """The tensors of `found` layers, in order, under the names of `target`'s layers of the same kind."""
    cls = nn.Conv2d if kind == "conv" else nn.BatchNorm2d
    wanted = [(n, m) for n, m in target.named_modules() if isinstance(m, cls)]
    if len(found) != len(wanted):
        raise CheckpointError(f"{path} has {len(found)} {kind} layers, resnet26 expects {len(wanted)}; {EXPECTED}")
    out = {}
    for i, ((src_name, src), (dst_name, dst)) in enumerate(zip(found, wanted)):
        for field in fields:
            t, ref = getattr(src, field, None), getattr(dst, field)
            if t is None or t.shape != ref.shape:
                got = "no tensor" if t is None else f"shape {tuple(t.shape)}"
                raise CheckpointError(f"{path}: {kind} {i} ({src_name}.{field}) has {got}, "
                                      f"resnet26 expects {tuple(ref.shape)} ({dst_name}.{field})")
            out[f"{dst_name}.{field}"] = t.detach().to(torch.float32)
        if kind == "bn":  # PyTorch 0.3 BNs have no counter
            n = getattr(src, "num_batches_tracked", None)
            out[f"{dst_name}.num_batches_tracked"] = torch.tensor(0) if n is None else n
    return out


def save_source(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict, half: bool = False) -> None:
    """Write a project backbone checkpoint; `half` stores floating tensors as fp16 to keep files small."""
    meta = json.loads(json.dumps(meta))  # plain data only (no str subclasses), so weights_only loads accept it
    sd = {k: v.detach().cpu() for k, v in state_dict.items()}
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    torch_save({"format": SOURCE_FORMAT, "state_dict": sd, "meta": meta}, path)


def is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_source(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(fp32 backbone state dict, meta) from a project checkpoint (without `fc.*`), a plain state dict (the
    backbone maps its names) or the official .t7."""
    path = _existing(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not _is_zip(path):  # the official .t7 pickles whole modules, which weights_only refuses
            return load_official_t7(path), {"origin": "official-t7", "path": str(path)}
        found = re.search(r"GLOBAL (\S+)", str(e))  # torch names the first global it refused
        needs = f" (it needs {found[1]})" if found else ""
        raise CheckpointError(f"{path} holds more than tensors and plain data{needs}: it was refused and nothing "
                              f"from it was run; {SOURCES}") from e
    except Exception as e:
        raise CheckpointError(f"{path} cannot be unpickled ({one_line(e)}); {SOURCES}") from e
    if is_state_dict(ckpt):  # a plain state dict, such as the efficientnet_lite0 ImageNet weights
        return {k: v.float() if v.is_floating_point() else v for k, v in ckpt.items()}, \
            {"origin": "state-dict", "path": str(path)}
    if not isinstance(ckpt, dict) or ckpt.get("format") != SOURCE_FORMAT:
        raise CheckpointError(
            f"{path} is neither a {SOURCE_FORMAT} checkpoint (written by save_source), a plain state dict, nor the "
            f"official {OFFICIAL_NAME}"
        )
    # Every method attaches its own head, so a stored fc is never wanted.
    sd = {k: v.float() if v.is_floating_point() else v
          for k, v in ckpt["state_dict"].items() if not k.startswith("fc.")}
    return sd, ckpt["meta"]
