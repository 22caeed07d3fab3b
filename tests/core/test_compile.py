"""torch.compile of the training step on the CPU: each method's loss (forward, cross-entropy, L2-SP penalty) is one
graph whose backward AOT autograd derives, it trains as eager does, and a run resumed under compile is bitwise exact.

Most tests compile with aot_eager: AOT autograd's graphs, run on eager's own kernels, so they compile in seconds
and must agree with eager exactly. Inductor, a minute or more cold on two cores, compiles in one test only."""
import math

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters

from multitune_lib.core.config import RunConfig
from multitune_lib.core.registry import METHODS
from multitune_lib.core.trainer import Trainer
from test_trainer import split

KEYS = ("train_loss", "penalty", "val_acc")


@pytest.fixture(autouse=True)
def fresh_compile():
    """Every test compiles from nothing: graphs cached by another test would hide this one's compile, and
    Trainer.losses is one function for every method, so entries would pile up to dynamo's recompile limit."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def make(method: str, compile, **kw) -> Trainer:
    # a method that searches settings before training (`timed`) is made with them here, as `bench` makes it
    cfg = RunConfig(method=method, dataset="toy", **{"epochs": 2, "batch_size": 6, "crop": 16,
                                                     **METHODS.get(method).timed, **kw})
    return Trainer(cfg, split(), split(2, seed=1), device="cpu", precision="fp32", compile=compile)


def trained(t: Trainer, epochs: int = 2) -> Trainer:
    for _ in range(epochs):
        t.epoch()
    return t


def rows(t: Trainer) -> list[list[float]]:
    return [[r[k] for k in KEYS] for r in t.history]


def same_weights(a: Trainer, b: Trainer) -> bool:
    return all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())


@pytest.mark.parametrize("method", METHODS.names())
def test_each_method_trains_as_one_graph_and_exactly_as_eager(method):
    counter = CompileCounterWithBackend("aot_eager")
    compiled, eager = trained(make(method, counter)), trained(make(method, False))
    # one graph for the training loss (its backward included), one for evaluation: no graph break, no recompile
    assert counter.frame_count == 2 and not counters["graph_break"]
    assert all(math.isfinite(v) for row in rows(compiled) for v in row)
    # aot_eager runs eager's kernels (SpotTune's Gumbel noise from the same generator): measured bitwise equal
    assert rows(compiled) == rows(eager) and same_weights(compiled, eager)


def test_each_batch_size_compiles_its_own_static_graph():
    """Batches of 5, 5 and 2: with automatic dynamic shapes the batch of 2 would recompile the loss for any batch
    size and epoch 2 would run that graph, where a run resumed at epoch 2 runs the static one (inductor: losses
    1e-7 apart). Static graphs keep resume exact."""
    counter = CompileCounterWithBackend("aot_eager")
    trained(make("feature", counter, batch_size=5))
    assert counter.frame_count == 3  # the loss at 5, at 2, evaluation
    inputs = [n.meta["example_value"] for g in counter.graphs for n in g.graph.find_nodes(op="placeholder")]
    assert all(isinstance(v, torch.Tensor) and all(type(d) is int for d in v.shape) for v in inputs)


def test_inductor_resume_is_bitwise_exact_and_close_to_eager():
    """Feature extraction, the cheapest to compile (only the head trains), with beta so the penalty is in the graph.
    The resumed run compiles afresh, as a new process would."""
    whole = trained(make("feature", True, beta=0.01))
    first = trained(make("feature", True, beta=0.01), 1)
    torch._dynamo.reset()
    resumed = make("feature", True, beta=0.01)
    resumed.load_state_dict(first.state_dict())
    trained(resumed, 1)
    assert rows(resumed) == rows(whole) and same_weights(resumed, whole)
    eager = trained(make("feature", False, beta=0.01))
    # inductor fuses and reorders float sums: measured 2e-7 relative after 4 steps (the penalty), asserted at 1e-5
    torch.testing.assert_close(rows(whole), rows(eager), rtol=1e-5, atol=0)
