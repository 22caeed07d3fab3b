"""The ratio search of parameter contribution: a seeded particle swarm over one fine-tuning ratio per conv layer
(nevergrad's ConfPSO through ask and tell), each candidate scored by a short proxy training on the train split less
a held-out share of each class, and on that share: never the val split that the tables report.

Every proxy is a run of the results store whose config is its identity (the candidate's ratios among its fields),
so a search interrupted anywhere asks its seeded optimiser the same candidates again and finds those already
scored. The released code's swarm (10 particles, 15 iterations, 5 epochs of proxy at lr 0.01, inertia 1.4 falling
to 0.7, c1 = c2 = 1.5, reseeded from entropy after every candidate) costs about 8x its fine-tuning; ours keeps its
acceleration constants, nevergrad's constant inertia 1 / (2 ln 2) (about the code's last value) and a budget sized
to about 2.5x fine-tuning (image passes).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import nevergrad as ng
import numpy as np

from ..core.backbone import conv_layer_sizes, conv_layers
from ..core.config import RunConfig, share_count
from ..errors import TrainingDiverged

DECIMALS = 3  # a candidate's ratios are rounded, so that asked again it names the same proxy run
ACCELERATION = 1.5  # c1 = c2, the released code's


class Scored(NamedTuple):
    iteration: int
    ratios: tuple[float, ...]
    score: float


def swarm(score: Callable[[tuple[float, ...]], float], dims: int, particles: int, iterations: int,
          seed: int) -> list[Scored]:
    """Maximise `score` over [0, 1]^dims: `particles` x `iterations` candidates, in the order asked."""
    optimizer = optimiser(dims, particles, iterations, seed)
    out = []
    for i in range(particles * iterations):
        candidate = optimizer.ask()
        ratios = rounded(candidate)
        value = score(ratios)
        optimizer.tell(candidate, -value)
        out.append(Scored(i // particles, ratios, value))
    return out


def optimiser(dims: int, particles: int, iterations: int, seed: int):
    """The seeded swarm over [0, 1]^dims: the same seed asks the same candidates."""
    space = ng.p.Array(shape=(dims,), lower=0.0, upper=1.0)
    space.random_state = np.random.RandomState(seed)
    return ng.families.ConfPSO(popsize=particles, phip=ACCELERATION, phig=ACCELERATION)(
        space, budget=particles * iterations)


def rounded(candidate) -> tuple[float, ...]:
    return tuple(round(float(r), DECIMALS) for r in candidate.value)


def first_candidates(cfg: RunConfig, n: int) -> list[tuple[float, ...]]:
    """The first `n` candidates `search` asks for `cfg` (its swarm's random first positions, n <= particles)."""
    optimizer = optimiser(conv_layers(cfg.backbone), cfg.search_particles, cfg.search_iterations, cfg.seed)
    return [rounded(optimizer.ask()) for _ in range(n)]


def best(scored: list[Scored]) -> Scored:
    """The highest score, the first asked among equals."""
    return max(scored, key=lambda s: s.score)


def per_layer(ratios: tuple[float, ...], layers: int) -> list[float]:
    """One ratio per conv layer: those given, or the one given for all."""
    return list(ratios) * layers if len(ratios) == 1 else list(ratios)


def trained_share(backbone: str, ratios: tuple[float, ...]) -> float:
    """The share of the backbone's weights (head aside) the ratios fine-tune: what they train, whatever the ranking."""
    sizes = conv_layer_sizes(backbone)
    trained = sum(share_count(r, n) for r, layer in zip(per_layer(ratios, len(sizes)), sizes) for n in layer)
    return trained / sum(map(sum, sizes))


def proxy_config(cfg: RunConfig, ratios: tuple[float, ...]) -> RunConfig:
    """A candidate's proxy: the run's settings at its ratios, `proxy_epochs` at a constant lr (as the code's proxies),
    trained without the held-out share and validated on it every epoch."""
    return dataclasses.replace(cfg, ratios=ratios, epochs=cfg.proxy_epochs, milestones=(), holdout=cfg.search_holdout,
                               eval_every=1, curve_val_images=None, whole_val=None)


def search(cfg: RunConfig, proxy: Callable[[RunConfig], dict]) -> tuple[RunConfig, dict]:
    """The config to train (the best candidate's ratios) and what the search did: its metrics (the run's table) and
    every candidate with its proxy run (run.json). A config that names its ratios trains them as they are."""
    if cfg.ratios is not None:
        return cfg, {}
    runs: dict[tuple, dict | None] = {}

    def score(ratios):
        runs[ratios] = scored_proxy(proxy, proxy_config(cfg, ratios))
        return runs[ratios]["metrics"]["best_val_acc"] if runs[ratios] else 0.0
    scored = swarm(score, conv_layers(cfg.backbone), cfg.search_particles, cfg.search_iterations, cfg.seed)
    top = best(scored)
    done = [r for r in runs.values() if r]
    metrics = {"searched_ratios": " ".join(map(str, top.ratios)), "search_score": top.score,
               "nevergrad": ng.__version__,
               "trained_share": trained_share(cfg.backbone, top.ratios), "proxy_runs": len(scored),
               "proxy_diverged": len(runs) - len(done),
               "search_minutes": sum(r["metrics"]["train_minutes"] + r["metrics"].get("setup_minutes", 0.0)
                                     for r in done)}
    record = [{"iteration": s.iteration, "ratios": list(s.ratios), "score": s.score,
               "digest": proxy_config(cfg, s.ratios).digest(), "diverged": runs[s.ratios] is None,
               "trained_share": trained_share(cfg.backbone, s.ratios)} for s in scored]
    return dataclasses.replace(cfg, ratios=top.ratios), {"metrics": metrics, "record": {"candidates": record}}


def scored_proxy(proxy: Callable[[RunConfig], dict], cfg: RunConfig) -> dict | None:
    """A candidate's proxy run, or None where its training diverged: the swarm scores it 0 and goes on, rather than
    failing the search on that candidate every time it is resumed (its minutes are not counted)."""
    try:
        return proxy(cfg)
    except TrainingDiverged as e:
        print(f"search proxy {cfg.digest()} diverged, scored 0: {e}")
        return None


def extra_work(cfg: RunConfig, train: int) -> tuple[int, int]:
    """(training, evaluation) image passes of the search beyond the final training: each proxy's epochs on the
    train split less its held-out share, validated on that share every epoch, and the taylor criterion's two
    passes (features, then gradients) in every proxy and in the final run."""
    if cfg.ratios is not None:
        return (train, train) if cfg.criterion == "taylor" else (0, 0)
    proxies = cfg.search_particles * cfg.search_iterations
    held = round(train * cfg.search_holdout)
    taylor = cfg.criterion == "taylor"
    passes = proxies * cfg.proxy_epochs * (train - held) + taylor * (proxies * (train - held) + train)
    evaluations = proxies * cfg.proxy_epochs * held + taylor * (proxies * (train - held) + train)
    return passes, evaluations
