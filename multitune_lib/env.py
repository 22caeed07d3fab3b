"""The environment a result came from: versions, device and git commit."""
from __future__ import annotations

import functools
import os
import platform
import subprocess

import torch
import torchvision

from . import paths


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """HEAD (with -dirty for uncommitted changes), read once per process: the code a process runs is what it
    imported, whatever is checked out later."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.project_root(), capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=paths.project_root(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model() or platform.processor() or platform.machine()


def cpu_model() -> str:
    """The CPU's marketing name on Linux, where platform.processor() is often empty."""
    return cpuinfo("model name")


def cpuinfo(field: str) -> str:
    """The first `field` line's value in /proc/cpuinfo; empty where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.split(":", 1)[0].strip() == field), "")
    except OSError:
        return ""


def cpu_features() -> str:
    """The kernels the CPU runs, which its name may not tell (one "Intel(R) Xeon(R) Processor" has AMX, another
    AVX-512 without bf16 instructions): ATen's dispatch level and how bf16 runs ("AVX512, bf16 emulated": oneDNN
    takes bf16 on any AVX-512 CPU, converting where the instructions are missing)."""
    flags = set(cpuinfo("flags").split())
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        bf16 = "AMX" if "amx_bf16" in flags else "AVX512-BF16"
    elif not cpu_has_bf16():
        bf16 = "none"
    else:
        bf16 = "emulated" if flags else "supported"  # without /proc/cpuinfo, oneDNN's word only
    return f"{torch.backends.cpu.get_cpu_capability()}, bf16 {bf16}"


def environment(device: torch.device) -> dict:
    out = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # TorchVersion would not load with weights_only
        "torchvision": str(torchvision.__version__),
        "cuda": torch.version.cuda or "none",
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),
    }
    if device.type == "cpu":
        out["cpu_features"] = cpu_features()
    return out


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """'auto' (or None) takes CUDA when present."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 here: on AVX-512 BF16 or AMX natively, on other AVX-512 CPUs by conversion; on AVX2
    it does not, and bf16 autocast there is slower than fp32."""
    try:
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def cpu_share(k: int) -> int:
    """Threads for each of k processes sharing this machine's CPUs (at least one)."""
    return max(1, (os.cpu_count() or 1) // k)
