"""Each notebook's closing paragraph, in Markdown, with every number read from the tables the notebook made:
what its section found, said the same way whichever profile ran it."""
from __future__ import annotations

import pandas as pd

from ..store.results import last_epoch
from .stats import mean_ci
from .study import Study, label
from .tables import plural, verdict


def data(counts: pd.DataFrame, sized: pd.DataFrame, stats: pd.DataFrame) -> str:
    """Notebook 00: each dataset's images and classes per split, its image sizes, and how close the recomputed
    per-channel mean and std come to the paper's Table 2."""
    said = []
    for dataset, rows in counts.groupby("dataset", sort=False):
        split = rows.set_index("split")
        images = " and ".join(f"{split.loc[s, 'images']:,} {s}" for s in split.index)
        spans = [span(split.loc[s, "min per class"], split.loc[s, "max per class"]) for s in split.index]
        per_class = f"{spans[0]} in each split" if len(set(spans)) == 1 else \
            " and ".join(f"{n} in {s}" for n, s in zip(spans, split.index))
        said.append(f"{dataset} holds {images} images of {split['classes'].max()} classes ({per_class} per class), "
                    f"{shape(sized[sized['dataset'] == dataset])}")
    worst = stats.assign(off=stats["whole - paper"].abs()).groupby("dataset", sort=False)["off"].max()
    table2 = ", ".join(f"{worst[d]:.4f} on {d}" for d in worst.index)
    text = "; ".join(said)
    return (text[:1].upper() + text[1:] + ". The per-channel mean and std of the whole train images lie within "
            f"{table2} of the paper's Table 2 (the largest difference of the six numbers).")


def span(low, high) -> str:
    return f"{low}" if low == high else f"{low}-{high}"


def shape(sized: pd.DataFrame) -> str:
    """'72 px high and 95-144 px wide (median 107)', or '72 x 72 px' where every image is one size."""
    w, h = sized["width"], sized["height"]
    if w.nunique() == 1 and h.nunique() == 1:
        return f"all {w.iloc[0]} x {h.iloc[0]} px"
    return f"{span(h.min(), h.max())} px high and {span(w.min(), w.max())} px wide (median {w.median():g})"


def final_accuracy(h: pd.DataFrame, name: str) -> str:
    """'MultiTune reaches 48.1 ± 2.0% on Aircraft (3 seeds)': each dataset's final-epoch accuracy in the history
    `h` of one method, the mean over seeds with its 95% t-interval."""
    h = h.dropna(subset=["val_acc"])
    last = last_epoch(h)
    said = [f"{percent(mean_ci(rows['val_acc'] * 100))} on {data}" for data, rows in
            last.groupby("dataset_label", sort=False)]
    return f"{name} reaches {' and '.join(said)} at its last epoch"


def percent(m) -> str:
    """A mean over seeds with its 95% half-width: '48.1 ± 2.0% (3 seeds)', or '48.1% (one seed)'."""
    spread = "" if pd.isna(m.half_width) else f" ± {m.half_width:.1f}"
    return f"{m.mean:.1f}{spread}% ({plural(m.n, 'seed')})"


def points(m) -> str:
    """A paired difference over seeds: '+3.2 ± 1.1 points (3 seeds)'."""
    spread = "" if pd.isna(m.half_width) else f" ± {m.half_width:.1f}"
    return f"{m.mean:+.1f}{spread} points ({plural(m.n, 'seed')})"


def spottune(h: pd.DataFrame, usage: pd.DataFrame, long: pd.DataFrame) -> str:
    """Notebook 01: SpotTune's accuracy on the whole-dataset rows, the share of images its argmax sends through
    the fine-tuned copies, and how sure its choice is in training (entropy in bits)."""
    if h.empty:
        return "The profile has no whole-dataset rows: SpotTune's few-shot runs are notebook 03's."
    said = [final_accuracy(h, "SpotTune") + "."]
    if not usage.empty:
        blocks = usage.groupby("block")["share_pct"].mean()
        said.append(f"At its last validation the policy's argmax sends {blocks.mean():.0f}% of the images through "
                    f"a block's fine-tuned copy on average over the {len(blocks)} routed blocks, from "
                    f"{blocks.min():.0f}% (block {blocks.idxmin()}) to {blocks.max():.0f}% (block {blocks.idxmax()}).")
    if long.empty:
        said.append("None of the profile's main SpotTune runs records the policy's choices in training (notebook 07 "
                    "shows the runs that do).")
    else:
        last = last_epoch(long)
        said.append(f"In training, at the last epoch, the policy samples the fine-tuned copy for "
                    f"{last['train_usage'].mean() * 100:.0f}% of the images with a mean entropy of "
                    f"{last['train_entropy'].mean():.2f} bits (1 bit is a coin flip) over the "
                    f"{plural(last['digest'].nunique(), 'main run')} that record it.")
    return " ".join(said)


def multitune(study: Study, h: pd.DataFrame, sweep: pd.DataFrame) -> str:
    """Notebook 02: MultiTune's accuracy on the whole-dataset rows, and its gain over its networks alone: over
    eta 1 (network A) and eta 0 (network B) where the profile sweeps eta, else over L2-SP, the fine-tuning each
    of its networks trains with (the final epoch, paired by seed)."""
    if h.empty:
        return "The profile has no whole-dataset rows: MultiTune's few-shot runs are notebook 03's."
    said = [final_accuracy(h, "MultiTune") + "."]
    wide = sweep.pivot_table(index="seed", columns="eta", values="final_val_acc_pct") if len(sweep) else None
    if wide is not None and {0.0, 0.5, 1.0} <= set(wide.columns):
        gains = [f"{points(mean_ci(wide[0.5] - wide[e]))} over {net} alone" for e, net in
                 ((1.0, "network A"), (0.0, "network B"))]
        said.append(f"Joined at eta = 0.5, its two networks gain {' and '.join(gains)}.")
        return " ".join(said)
    v = verdict(study, "multitune", "l2sp")
    v = v[(v["measure"] == "final") & v["images_per_class"].map(lambda n: pd.isna(n) or n == study.profile.full_row)]
    if v.empty:
        said.append("With no eta sweep and no L2-SP runs on these rows, its networks alone are not measured here.")
    for r in v.itertuples():
        said.append(f"On {r.data}, MultiTune minus L2-SP (the fine-tuning each of its networks trains with, on its "
                    f"own) is {difference(r)}.")
    return " ".join(said)


def difference(r) -> str:
    """A verdict row as words: the mean difference with its interval, the seeds ahead, the Holm-adjusted p."""
    if r.seeds < 2:
        return f"{r.diff_pct:+.1f} points (one seed: no interval)"
    holm = "" if pd.isna(r.p_holm) else f", Holm-adjusted p {r.p_holm:.2g}"
    return (f"{r.diff_pct:+.1f} ± {r.ci95_pct:.1f} points, ahead in {r.ahead} of {r.seeds} seeds{holm} "
            f"({r.verdict})")


def ablation(table: pd.DataFrame, row: str) -> str:
    """Notebook 06: the paper protocol's gap on the ablation's row, the differences that move it beyond their own
    95% interval and which of them Holm's adjustment over every difference tested keeps below 0.05, and what the
    released code does all at once. `table` is `ablation.summary`'s."""
    paper, moves = table.iloc[0], table.iloc[1:].dropna(subset=["change_pct"])
    if pd.isna(paper["gap_pct"]):
        return f"No paper-protocol run of both methods on {row} is in the store yet."
    said = [f"Under the paper's protocol, MultiTune minus SpotTune on {row} is "
            f"{signed(paper['gap_pct'], paper['gap_ci95'])} points over {plural(int(paper['seeds']), 'seed')}."]
    if moves["change_ci95"].isna().all():
        return " ".join(said + ["With one seed no move has an interval yet."])
    beyond = moves[(moves["change_pct"].abs() > moves["change_ci95"])]
    kept = beyond[beyond["change_p_holm"] < 0.05]
    said.append(f"Of the {len(moves)} moves towards the released code, {len(beyond)} shift the gap beyond their own "
                f"interval{names(beyond)}; after Holm's adjustment over all {len(moves)}, {len(kept)} "
                f"{stay(len(kept))} below 0.05{names(kept)}.")
    released = table.iloc[-1]  # the released code, every difference at once
    if not pd.isna(released["gap_pct"]):
        said.append(f"The released code all at once leaves a gap of "
                    f"{signed(released['gap_pct'], released['gap_ci95'])} points.")
    return " ".join(said)


def signed(mean: float, half: float) -> str:
    return f"{mean:+.1f}" + ("" if pd.isna(half) else f" ± {half:.1f}")


def names(moves: pd.DataFrame) -> str:
    """' (augmentation -1.7, favouring SpotTune; ...)': each move of the gap and whom it favours; '' for none."""
    items = [f"{r.difference} {r.change_pct:+.1f}, favouring {'MultiTune' if r.change_pct > 0 else 'SpotTune'}"
             for r in moves.itertuples()]
    return f" ({'; '.join(items)})" if items else ""


def variants(table: pd.DataFrame, where: str = "comparison row") -> str:
    """Notebook 07: per SpotTune variant, its accuracy on each row (`where` names them), and on how many rows it
    lies above, within or below fine-tuning and the all-routing runs (each difference's own 95% interval, paired by
    seed). `table` is `spottune_variants.comparison`'s."""
    said = []
    for variant, rows in table.groupby("variant", sort=False):
        run = rows[rows["seeds"] > 0]
        if run.empty:
            said.append(f"{variant}: not run yet")
            continue
        sides = [f"against {base} {sides_of(run[f'{col}_pct'], run[f'{col}_ci95'])}"
                 for col, base in (("vs_finetune", "fine-tuning"), ("vs_all", "routing all blocks"))
                 if run[f"{col}_pct"].notna().any()]
        accs = ", ".join(f"{percent_of(r.acc_pct, r.acc_ci95, r.seeds)} on {r.dataset}, "
                         f"{row_name(r.images_per_class)}" for r in run.itertuples())
        said.append(f"{variant}: {accs}" + (f"; {', '.join(sides)}" if sides else ""))
    return (f"Final-epoch accuracy per {where}; each difference is paired by seed and read by its own 95% "
            "interval. " + ". ".join(s[:1].upper() + s[1:] for s in said) + ".")


def percent_of(mean: float, half: float, seeds: int) -> str:
    spread = "" if pd.isna(half) else f" ± {half:.1f}"
    return f"{mean:.1f}{spread}% ({plural(int(seeds), 'seed')})"


def sides_of(diff: pd.Series, half: pd.Series) -> str:
    """'higher on 1, within on 1 and lower on 0 of 2 rows' over the rows with an interval, and how many have one
    seed (no interval yet); only the mean where no row has an interval."""
    d, h = diff.dropna(), half.reindex(diff.dropna().index)
    if h.isna().all():
        return f"{d.mean():+.1f} points on average (one seed: no interval yet)"
    bare = int(h.isna().sum())
    d, h = d[h.notna()], h[h.notna()]
    higher, lower = int((d - h > 0).sum()), int((d + h < 0).sum())
    return (f"higher on {higher}, within its interval on {len(d) - higher - lower} and lower on {lower} of "
            f"{plural(len(d), 'row')}" + (f" with an interval ({plural(bare, 'row')} with one seed)" if bare else ""))


def contrasts_said(against: pd.DataFrame) -> list[str]:
    """Per contrast of `against` (a `tables.contrasts` table): on which side of 0 its rows lie, and how many stay
    below 0.05 after Holm's adjustment over the rows."""
    said = []
    for contrast, rows in against.groupby("contrast", sort=False):
        held = int((rows["p_holm"] < 0.05).sum())
        holm = f", {held} of them below 0.05 after Holm's adjustment" if rows["p_holm"].notna().any() else ""
        said.append(f"{contrast}: {sides_of(rows['diff_pct'], rows['ci95_pct'])}{holm}")
    return said


def amf(against: pd.DataFrame, sweep: pd.DataFrame, policy: pd.DataFrame, third: pd.DataFrame | None = None) -> str:
    """Notebook 08: AMF against each method on the rows it ran (better, within or worse by the row's interval,
    and what Holm's adjustment over the rows keeps), the third network's effect and the weight its policy gives
    each of the three, and whether its policy weights the images apart. Arguments: `amf.against`, `amf.sweep`,
    `amf.policy` and `amf.sweep_policy`."""
    if against.empty:
        return "No AMF run of this profile is in the store yet."
    said = contrasts_said(against)
    if sweep["seeds"].iloc[0] > 0:
        said.append(third_network_said(sweep))
    if third is not None and not third.empty:
        said.append(three_said(third))
    if not policy.empty:
        said.append(policy_said(policy))
    return "; ".join(s[:1].upper() + s[1:] if i == 0 else s for i, s in enumerate(said)) + "."


def third_network_said(sweep: pd.DataFrame) -> str:
    """`amf.sweep`'s contrasts in a clause: what the third network moves AMF by, then where that leaves it against
    MultiTune and fine-tuning (those whose runs are in)."""
    s, rest = sweep.iloc[0], sweep.iloc[1:]
    against = ", ".join(f"{r.contrast}: {signed(r.diff_pct, r.ci95_pct)}" for r in rest.itertuples() if r.seeds > 0)
    return (f"a third network (plain fine-tuning) moves AMF by {signed(s['diff_pct'], s['ci95_pct'])} points on "
            f"{s['data']}, {row_name(s['images_per_class'])}, over {plural(int(s['seeds']), 'seed')}"
            + (f"; {against} points" if against else ""))


def three_said(third: pd.DataFrame) -> str:
    """The K = 3 sweep's policy at the last epoch: each network's mean weight over images, as a range over seeds,
    since each seed's policy can settle apart (`amf.sweep_policy`'s frame)."""
    w = third.groupby("network", sort=False)["weight"].agg(["min", "max"])
    named = ", ".join(f"{'plain fine-tuning' if name == 'finetune' else 'setting ' + name} {r['min']:.2f} to "
                      f"{r['max']:.2f}" for name, r in w.iterrows())
    return (f"with three networks the policy's mean weight per network at the last epoch, over the "
            f"{third['seed'].nunique()} seeds, is {named}")


def policy_said(policy: pd.DataFrame, leaning: float = 0.8) -> str:
    """AMF's policy at each run's last epoch, as a range over runs rather than a mean, since runs can learn apart:
    network A's mean weight over images, its spread, and in how many runs one network takes `leaning` or more."""
    last = last_epoch(policy)
    a = last[last["network"] == "0"]
    leans = int((last.groupby("digest")["weight"].max() >= leaning).sum())
    return (f"at the last epoch the policy gives network A a mean weight of {a['weight'].min():.2f} to "
            f"{a['weight'].max():.2f} over the {len(a)} runs, spread over images by a standard deviation of "
            f"{a['weight_sd'].min():.2f} to {a['weight_sd'].max():.2f}; in {leans} of them one network takes "
            f"{leaning:.0%} of the weight or more on average")


def contribution(against: pd.DataFrame, cost: pd.DataFrame, criteria: pd.DataFrame) -> str:
    """Notebook 10: parameter contribution against each method on the rows it ran, what its search trained and
    cost against fine-tuning, and the criterion ablation. Arguments: `contribution.against`, `.cost`, `.criteria`."""
    if against.empty:
        return "No parameter contribution run of this profile is in the store yet."
    said = contrasts_said(against)
    if not cost.empty:
        said.append(f"its searched ratios fine-tune {cost['trained_share'].min():.0%} to "
                    f"{cost['trained_share'].max():.0%} of the weights by row, and a whole run (search and final "
                    f"training) takes {cost['times_finetune'].min():.1f}x to {cost['times_finetune'].max():.1f}x "
                    "fine-tuning's minutes")
    compared = (criteria["criterion"] != "signed_value") & criteria["vs_signed_value_pct"].notna()
    for r in criteria[compared].itertuples():  # a criterion whose runs, and the signed value's, are in
        said.append(f"on {r.data}, {row_name(r.images_per_class)}, ranking by {r.criterion.replace('_', ' ')} "
                    f"instead of the signed value moves it by {signed(r.vs_signed_value_pct, r.vs_signed_value_ci95)} "
                    "points")
    return "; ".join(s[:1].upper() + s[1:] if i == 0 else s for i, s in enumerate(said)) + "."


def selective_joint(against: pd.DataFrame, rounds: pd.DataFrame) -> str:
    """Notebook 11: selective joint fine-tuning against each method on the rows it ran, and how much of its pool
    it drew on in a round. Arguments: `selective_joint.against` and `.rounds`."""
    if against.empty:
        return "No selective joint fine-tuning run of this profile is in the store yet."
    said = contrasts_said(against)
    if not rounds.empty:
        share = rounds["sources_used"] / rounds["pool_images"]
        said.append(f"a round draws on {rounds['sources_used'].min():,} to {rounds['sources_used'].max():,} distinct "
                    f"source images ({share.min():.0%} to {share.max():.0%} of its pool)")
    return "; ".join(s[:1].upper() + s[1:] if i == 0 else s for i, s in enumerate(said)) + "."


def row_name(images_per_class) -> str:
    return "whole dataset" if pd.isna(images_per_class) else f"{int(images_per_class)} per class"


def listed(rows: pd.DataFrame) -> str:
    """' (Aircraft, whole dataset: +10.9 ± 3.4; CIFAR100, 20 per class: +2.1 ± 1.0)', or '' for no rows."""
    items = [f"{r.data}, {row_name(r.images_per_class)}: {signed(r.diff_pct, r.ci95_pct)}" for r in rows.itertuples()]
    return f" ({'; '.join(items)})" if items else ""


def verdict_reading(v: pd.DataFrame, what: str = "MultiTune minus SpotTune", adjusted_over: int | None = None) -> str:
    """The final-epoch rows of a `tables.verdict` table by their own 95% interval (above 0, around it, below), the
    rows where the first method is ahead in every seed, and those Holm's adjustment keeps below 0.05 (made over
    `adjusted_over` rows where `v` is a selection of the table's)."""
    f = finals(v)
    if f.empty:
        return f"{what}: no row has runs of both yet."
    if f["ci95_pct"].isna().all():
        return f"{what} at the final epoch, one seed and so no interval yet{listed(f)}."
    above, below = f[f["diff_pct"] - f["ci95_pct"] > 0], f[f["diff_pct"] + f["ci95_pct"] < 0]
    within = f.drop(index=above.index.union(below.index))
    held, every = f[f["p_holm"] < 0.05], f[(f["ahead"] == f["seeds"]) & (f["seeds"] > 1)]
    over = "the rows" if adjusted_over in (None, len(f)) else f"all {adjusted_over} rows of the verdict"
    return (f"{what} at the final epoch, paired by seed: above 0 beyond its 95% interval on {len(above)} of "
            f"{plural(len(f), 'row')}{listed(above)}, around 0 on {len(within)}{listed(within)} and below on "
            f"{len(below)}{listed(below)}; {what.split(' minus ')[0]} is ahead in every seed on {len(every)}; after "
            f"Holm's adjustment over {over}, {len(held)} {stay(len(held))} below 0.05{listed(held)}.")


def finals(v: pd.DataFrame) -> pd.DataFrame:
    """A verdict table's final-epoch rows (all of them where it has no `measure`)."""
    return v[v["measure"] == "final"] if "measure" in v else v


def stay(n: int) -> str:
    return "stays" if n == 1 else "stay"


def few_shot(study: Study, runs: pd.DataFrame, v: pd.DataFrame) -> str:
    """Notebook 03: per dataset, the method ahead at the largest and at the smallest few-shot row and how far
    MultiTune and SpotTune fall between them (means over seeds); then `verdict_reading` of the few-shot rows.
    `runs`: `Study.run_all`'s; `v`: `tables.verdict`'s."""
    rows = list(study.profile.few_shot_rows)
    few = runs[runs["images_per_class"].isin(rows)]
    if few.empty:
        return "No few-shot run is in the store yet."
    said = []
    for dataset, d in few.groupby("dataset", sort=False):
        acc = d.groupby(["images_per_class", "method_label"])["final_val_acc"].mean() * 100
        top, low = int(d["images_per_class"].max()), int(d["images_per_class"].min())
        lead = [f"{acc[n].idxmax()} at {n} images per class ({acc[n].max():.1f}%)" for n in (top, low)]
        falls = [f"{m} from {acc[top][m]:.1f}% to {acc[low][m]:.1f}%" for m in ("MultiTune", "SpotTune")
                 if m in acc[top] and m in acc[low]]
        said.append(f"On {study.profile.label(dataset)} the best method is {' and '.join(lead)}"
                    + (f"; between the two, {' and '.join(falls)}" if falls and top != low else "") + ".")
    return " ".join(said + [verdict_reading(v[v["images_per_class"].isin(rows)], adjusted_over=len(finals(v)))])


def table3(v: pd.DataFrame, why: pd.DataFrame) -> str:
    """Notebook 04: does MultiTune beat SpotTune (`verdict_reading`), and, from `tables.why`, what joining two
    networks adds to L2-SP and routing adds to fine-tuning, row by row."""
    said = [verdict_reading(v)]
    for contrast, rows in why.groupby("contrast", sort=False):
        said.append(f"{contrast}: {sides_of(rows['diff_pct'], rows['ci95_pct'])}.")
    return " ".join(said)


def lite0(table: pd.DataFrame, usage: pd.DataFrame, v: pd.DataFrame) -> str:
    """Notebook 05: per dataset, the methods ranked by their mean final accuracy over its rows and the method
    ahead on most rows; where SpotTune routes through fine-tuned blocks; and `verdict_reading`. `table` is
    `tables.table3`'s, `usage` `plots.last_usage`'s."""
    if table.empty:
        return "No run of this profile is in the store yet."
    said = []
    for data, t in table.groupby("data", sort=False):
        ranked = t.groupby("method")["ours_final_pct"].mean().sort_values(ascending=False)
        wins = t.loc[t.groupby("images_per_class", dropna=False)["ours_final_pct"].idxmax(), "method"].value_counts()
        said.append(f"On {data}, averaged over its {plural(t['images_per_class'].nunique(dropna=False), 'row')}: "
                    + ", ".join(f"{m} {a:.1f}%" for m, a in ranked.items())
                    + f"; {wins.index[0]} is ahead on {wins.iloc[0]} of them.")
    for data, u in usage.groupby("dataset_label", sort=False):
        blocks = u.groupby("block")["share_pct"].mean()
        said.append(f"SpotTune sends {blocks.mean():.0f}% of the {data} validation images through a block's "
                    f"fine-tuned copy on average, {blocks.iloc[-1]:.0f}% through its last block's.")
    return " ".join(said + [verdict_reading(v)])


def schedules(table: pd.DataFrame, diffs: pd.DataFrame) -> str:
    """Notebook 09: per compared row, MultiTune - SpotTune and SpotTune - fine-tuning at the final epoch under each
    schedule, each read by its own 95% interval, and whether the verdict holds; how far the longer schedule moves
    each method's final accuracy, or that it is not trained yet. Arguments: `schedules.table` and `.differences`."""
    if table.empty:
        return "No pair of profiles under two schedules here: nothing to compare."
    short, long = sorted(int(e) for e in table["epochs"].unique())
    said = []
    final = diffs[diffs["measure"] == "final"]
    for (data, n), rows in final.groupby(["data", "images_per_class"], sort=False):
        for contrast in ("MultiTune - SpotTune", "SpotTune - Fine-tuning"):
            by = rows[rows["contrast"] == contrast].set_index("epochs")
            said.append(f"{contrast} on {data}, {row_name(n)}: {at(by, short)}; {at(by, long)}{holds(by, short, long)}")
    moved = table[table["change_seeds"] > 0]
    if moved.empty:
        said.append(f"the {long}-epoch runs are not trained yet, so the {short}-epoch verdict stands alone")
    for (data, n), rows in moved.groupby(["data", "images_per_class"], sort=False):
        shifts = ", ".join(f"{label(r.method)} {signed(r.change_pct, r.change_ci95)}" for r in rows.itertuples())
        said.append(f"from {short} to {long} epochs, paired by seed, the final accuracy on {data}, {row_name(n)} "
                    f"moves by {shifts} points")
    return ". ".join(s[:1].upper() + s[1:] for s in said) + "."


def at(by: pd.DataFrame, epochs: int) -> str:
    """One schedule's difference as words: '-2.0 ± 1.3 points at 15 epochs (Fine-tuning better)'."""
    if epochs not in by.index:
        return f"not yet trained at {epochs} epochs"
    r = by.loc[epochs]
    return f"{signed(r['diff_pct'], r['ci95_pct'])} points at {epochs} epochs ({r['verdict']})"


def holds(by: pd.DataFrame, short: int, long: int) -> str:
    """Whether the verdict a contrast's own interval reads is the same under both schedules ('' until both have
    an interval: one seed reads no verdict to keep or change)."""
    if not {short, long} <= set(by.index) or by.loc[[short, long], "seeds"].min() < 2:
        return ""
    same = by.loc[short, "verdict"] == by.loc[long, "verdict"]
    return ", the same verdict under both" if same else f", the verdict changes with the {long}-epoch schedule"
