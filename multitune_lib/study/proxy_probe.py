"""Does a proxy's held-out score reflect its candidate, or the seed? Parameter contribution's search ranks
candidates by a short proxy training; this probe trains the search's first candidates (its swarm's random first
positions) as proxies on one row under two seeds, longer than the default, validated on the held-out share every
epoch, and compares the spread of the score between candidates with its spread between seeds of one candidate."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ..core.fit import fit
from ..methods import ratio_search
from ..store.results import ResultsStore
from .study import Study


def configs(study: Study, dataset: str, n: int | None, candidates: int, seeds, epochs: int) -> list[tuple]:
    """(candidate, seed, proxy config): seed 0's search's first candidates, each as a proxy under every seed."""
    base = study.run_config("contribution", dataset, n, 0).resolved()
    out = []
    for i, ratios in enumerate(ratio_search.first_candidates(base, candidates)):
        for seed in seeds:
            cfg = study.run_config("contribution", dataset, n, seed).resolved()
            out.append((i, seed, ratio_search.proxy_config(dataclasses.replace(cfg, proxy_epochs=epochs), ratios)))
    return out


def run(study: Study, results: str | Path, dataset: str, n: int | None, candidates: int = 4, seeds=(0, 1),
        epochs: int = 4) -> pd.DataFrame:
    """Train what the probe's store lacks; per candidate, seed and epoch, the best held-out accuracy so far (%), which
    a proxy of that many epochs would score."""
    plan = configs(study, dataset, n, candidates, seeds, epochs)
    for i, seed, cfg in plan if study.train else []:
        fit(cfg, data_root=study.data_root, results=results, source=study.source, device=study.device,
            tags={"probe": "proxy score", "candidate": i})
    h, rows = ResultsStore(results).history(), []
    for i, seed, cfg in plan if not h.empty else []:
        acc = h[h["digest"] == cfg.digest()].set_index("epoch")["val_acc"].cummax() * 100
        rows += [{"candidate": i, "seed": seed, "epoch": e, "score_pct": a} for e, a in acc.items()]
    return pd.DataFrame(rows, columns=["candidate", "seed", "epoch", "score_pct"])


def noise(scores: pd.DataFrame) -> pd.DataFrame:
    """Per proxy length (epochs): the standard deviation of the candidates' mean scores (what the search can tell
    apart), the mean within-candidate standard deviation over seeds (what a seed moves), and the rank correlation of
    the candidates' scores between the first two seeds."""
    out = []
    for epoch, e in scores.groupby("epoch"):
        wide = e.pivot(index="candidate", columns="seed", values="score_pct")
        out.append({"epochs": epoch, "candidates": len(wide), "between_candidates_sd": wide.mean(axis=1).std(),
                    "within_candidate_sd": wide.std(axis=1).mean(),
                    "rank_corr_seeds": wide.iloc[:, 0].corr(wide.iloc[:, 1], method="spearman")})
    return pd.DataFrame(out)
