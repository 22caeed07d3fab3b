"""Table 3 and Fig. 2 from the results store alone: the committed offline-cpu figures redraw byte for byte."""
import math

import numpy as np
import pandas as pd
import pytest

from multitune_lib import paths
from multitune_lib.study import Study, profiles, report

COMMITTED = paths.project_root() / "figures" / "offline-cpu"
T_975_2 = 4.302652729749464  # Student t, 97.5% quantile, 2 degrees of freedom (three seeds): from a t table


def finish_with_best(study, cfg, final: float, best: float) -> None:
    """A finished run whose best epoch beat its final one (conftest's `finish` gives both one accuracy)."""
    row = {"digest": cfg.digest(), "config": cfg.resolved().to_dict(), "source": None, "tags": {},
           "metrics": {"final_val_acc": final, "best_val_acc": best, "train_minutes": 1.0, "precision": "float32"},
           "env": {"device_name": "test"}, "finished_at": "2026-01-01T00:00:00+00:00"}
    study.store.finish(row, [{"epoch": 1, "train_loss": 1.0, "val_acc": best},
                             {"epoch": 2, "train_loss": 1.0, "val_acc": final}])


def test_an_empty_study_reads_as_empty_tables(tmp_path):
    study = Study("smoke", results=tmp_path / "store")
    assert study.runs().empty and study.history().empty
    h = study.history()
    assert h[(h["method"] == "spottune") & h["full_row"] & h["main"]].empty  # what notebooks 01 and 02 select
    t = report.table3(study)  # what notebook 04 makes of it
    assert t.empty and set(report.TABLE3_COLUMNS) <= set(t.columns)
    report.write_table3(t, tmp_path / "figures", study.profile)
    assert "# Table 3 (smoke profile)" in (tmp_path / "figures" / "table3.md").read_text()
    report.save_fig(report.fig2(study), tmp_path / "figures")


def test_the_readme_results_are_the_committed_table3():
    """The README's results table is copied by hand; this keeps it honest against what the study wrote."""
    readme = (paths.project_root() / "README.md").read_text()
    block = readme.split("<!-- results:offline-cpu", 1)[1].split("<!-- end results -->", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[3:] if line.startswith("|")]
    t = pd.read_csv(paths.project_root() / "figures" / "offline-cpu" / "table3.csv")
    assert len(rows) == len(t)
    for label, shots, method, acc, sd, minutes, paper_acc, paper_minutes in rows:
        row = t[(t["data"] == label) & (t["images_per_class"].astype(str) == shots) & (t["method"] == method)]
        assert len(row) == 1, (label, shots, method)
        row = row.iloc[0]
        assert (acc, sd, minutes) == (f"{row.ours_final_pct:.2f}", f"{row.ours_final_sd_pct:.2f}",
                                      f"{row.ours_minutes:.1f}")
        assert (float(paper_acc), float(paper_minutes)) == (row.paper_best_pct, row.paper_minutes)


def test_fig2_of_a_profile_validated_once_per_run_plots_images_per_class():
    """offline-cpu validates after the last epoch only: against epoch its points would sit on one another."""
    fig = report.fig2(Study("offline-cpu"))
    smaller = fig.axes[1]
    assert [t.get_text() for t in smaller.get_xticklabels()] == ["15", "10", "5"]
    assert smaller.get_xlabel() == "images per class (validated after epoch 15 only)"
    assert [t.get_text() for t in smaller.get_legend().get_texts()] == ["SpotTune", "MultiTune"]


def test_table3_names_every_device_and_precision_its_seeds_ran_on():
    t = report.table3(Study("offline-cpu")).set_index(["images_per_class", "method"])
    # 10 and 5 images per class: seed 0 recorded the machine as x86_64, seed 1 by its CPU model; 15 ran on a bf16 CPU
    assert t.loc[(10, "SpotTune"), "device"] == "AMD EPYC, x86_64" and (t["seeds"] == 2).all()
    assert t.loc[(15, "SpotTune"), "precision"] == "bfloat16" and t.loc[(5, "MultiTune"), "precision"] == "float32"


def test_fig2_pdf_carries_no_creation_date(tmp_path):
    """Otherwise every redraw of an unchanged store would change the committed PDF."""
    report.save_fig(report.fig2(Study("offline-cpu")), tmp_path)
    assert b"/CreationDate" not in (tmp_path / "fig2.pdf").read_bytes()


@pytest.mark.parametrize("name", ["table3.csv", "table3.md", "verdict.csv"])
def test_table3_of_the_committed_store_is_the_committed_table3(tmp_path, name):
    study = Study("offline-cpu")
    report.write_table3(report.table3(study), tmp_path, study.profile, report.verdict(study))
    assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes()


def test_fig2_of_the_committed_store_is_the_committed_fig2(tmp_path):
    report.save_fig(report.fig2(Study("offline-cpu")), tmp_path)
    for name in ("fig2.png", "fig2.pdf"):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name


def test_table3_beside_the_paper():
    t = report.table3(Study("offline-cpu"))
    assert t["profile"].eq("offline-cpu").all() and t["diff_best_vs_paper_pct"].isna().all()  # not the paper's source
    assert t[["method", "images_per_class"]].apply(tuple, axis=1).tolist() == \
        [("MultiTune", 15), ("MultiTune", 10), ("MultiTune", 5), ("SpotTune", 15), ("SpotTune", 10), ("SpotTune", 5)]
    paper = report.paper_table3()
    assert paper["images_per_class"].dtype == pd.Int64Dtype() and paper["images_per_class"].isna().any()
    order = sorted(paper["images_per_class"].drop_duplicates(), key=report.row_key)
    assert [None if pd.isna(n) else int(n) for n in order] == [None, 20, 15, 10, 5]  # the paper's row order
    shown = report.shown(paper)
    assert "all" in shown["images_per_class"].tolist() and 20 in shown["images_per_class"].tolist()
    assert report.palette() == {"SpotTune": "tab:blue", "MultiTune": "tab:red"}


def test_markdown():
    df = pd.DataFrame({"a": ["x", "y"], "b": [1.234, float("nan")], "c": [3, 4]})
    assert report.markdown(df) == "| a | b | c |\n|---|---|---|\n| x | 1.23 | 3 |\n| y |  | 4 |\n"


def test_paired_p_and_holm_of_numbers_worked_by_hand():
    # differences 1, 2, 3: t = 2 / (1 / sqrt 3) = sqrt 12; with 2 degrees of freedom p = 1 - t / sqrt(t^2 + 2)
    assert report.paired_p([1, 2, 3]) == pytest.approx(1 - math.sqrt(12) / math.sqrt(14), rel=1e-9)  # 0.0741799
    assert math.isnan(report.paired_p([1.0, None]))  # one seed: no test
    assert (report.paired_p([2, 2, 2]), report.paired_p([0, 0])) == (0.0, 1.0)  # no spread
    adjusted = report.holm([0.01, 0.04, None, 0.03])  # m = 3: 0.01 x 3, 0.03 x 2, then 0.04 x 1 held up to 0.06
    assert adjusted.iloc[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adjusted.iloc[2])
    assert report.holm([0.4, 0.5]).tolist() == [0.8, 0.8]
    assert report.holm([0.9, 0.6]).tolist() == [1.0, 1.0]  # capped


def test_mean_ci_of_numbers_worked_by_hand():
    m = report.mean_ci([1, 2, 3])
    assert (m.mean, m.sd, m.n) == (2.0, 1.0, 3)
    assert m.half_width == pytest.approx(T_975_2 * 1 / math.sqrt(3), rel=1e-12)  # 2.4841377
    assert report.t_interval([1, 2, 3]) == pytest.approx((2 - 2.4841377, 2 + 2.4841377), rel=1e-7)
    assert report.ci95(pd.Series([1.0, 2.0, 3.0, None])) == pytest.approx(2.4841377, rel=1e-7)  # None left out
    one = report.mean_ci([5.0])
    assert one.mean == 5.0 and one.n == 1 and math.isnan(one.sd) and math.isnan(one.half_width)
    assert report.mean_ci([]).n == 0 and math.isnan(report.mean_ci([]).mean)


def test_verdict_pairs_seeds_and_needs_the_interval_to_exclude_zero(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for seed, (mt, st) in enumerate([(0.60, 0.50), (0.62, 0.51), (0.61, 0.52)]):  # MultiTune ahead on every seed
        finish(study, study.config("multitune", "aircraft", 4, seed), mt)
        finish(study, study.config("spottune", "aircraft", 4, seed), st)
    for seed, (mt, st) in enumerate([(0.40, 0.50), (0.55, 0.45), (0.50, 0.50)]):  # no clear winner
        finish(study, study.config("multitune", "aircraft", 2, seed), mt)
        finish(study, study.config("spottune", "aircraft", 2, seed), st)
    v = report.verdict(study)
    assert v["measure"].tolist() == ["final", "best"] * 2 and v["images_per_class"].tolist() == [4, 4, 2, 2]
    v = v[v["measure"] == "final"].set_index("images_per_class")
    assert v.loc[4, "verdict"] == "MultiTune better" and v.loc[4, "diff_pct"] == pytest.approx(10.0)
    assert v.loc[4, "ci95_pct"] == pytest.approx(T_975_2 * 1.0 / 3 ** 0.5, rel=1e-6)  # differences 10, 11, 9: sd 1
    assert v.loc[2, "verdict"] == "within the interval"
    t = report.table3(study).set_index(["images_per_class", "method"])
    assert t.loc[(4, "MultiTune"), "ours_final_ci95_pct"] == pytest.approx(T_975_2 * 1.0 / 3 ** 0.5, rel=1e-6)
    report.write_table3(report.table3(study), tmp_path / "f", study.profile, report.verdict(study))
    md = (tmp_path / "f" / "table3.md").read_text()
    assert "Does MultiTune beat SpotTune?" in md and "95% Student-t interval over seeds" in md
    assert "the best of its 110 epochs, so diff_best_vs_paper_pct compares our best epoch" in md
    assert "MultiTune better" in (tmp_path / "f" / "verdict.csv").read_text()
    assert report.verdict(Study("smoke", results=tmp_path / "empty")).empty


def test_verdict_at_the_final_and_the_best_epoch_worked_by_hand(tmp_path):
    """Seeds pair up (a seed draws the same few-shot images for both methods): MultiTune minus SpotTune per seed."""
    study = Study("smoke", results=tmp_path)
    finals = [(0.50, 0.40), (0.60, 0.55), (0.70, 0.62)]  # differences 10, 5, 8 points
    bests = [(0.55, 0.60), (0.60, 0.55), (0.70, 0.62)]  # differences -5, 5, 8 points
    for seed, ((mt, st), (mt_best, st_best)) in enumerate(zip(finals, bests)):
        finish_with_best(study, study.config("multitune", "aircraft", 4, seed), mt, mt_best)
        finish_with_best(study, study.config("spottune", "aircraft", 4, seed), st, st_best)
    finish_with_best(study, study.config("multitune", "aircraft", 2, 0), 0.30, 0.35)  # one seed only
    finish_with_best(study, study.config("spottune", "aircraft", 2, 0), 0.20, 0.25)
    v = report.verdict(study).set_index(["images_per_class", "measure"])
    final, best = v.loc[(4, "final")], v.loc[(4, "best")]
    # mean 23/3; sd sqrt(((7/3)^2 + (8/3)^2 + (1/3)^2) / 2) = 2.5166115; half-width t x sd / sqrt(3)
    assert (final.seeds, final.verdict) == (3, "MultiTune better") and final.diff_pct == pytest.approx(23 / 3)
    assert final.ci95_pct == pytest.approx(T_975_2 * 2.5166115 / math.sqrt(3), rel=1e-6)  # 6.2516095
    # mean 8/3; sd sqrt(834 / 18) = 6.8068593: the interval (-14.2, 19.6) holds 0
    assert best.verdict == "within the interval" and best.diff_pct == pytest.approx(8 / 3)
    assert best.ci95_pct == pytest.approx(T_975_2 * 6.8068593 / math.sqrt(3), rel=1e-6)  # 16.909176
    one = v.loc[(2, "final")]
    assert (one.seeds, one.verdict) == (1, "one seed: no interval") and one.diff_pct == pytest.approx(10.0)
    assert math.isnan(one.ci95_pct)
    t = report.table3(study).set_index(["images_per_class", "method"]).loc[(4, "SpotTune")]
    assert t.ours_final_pct == pytest.approx(157 / 3) and t.ours_best_pct == pytest.approx(59.0)  # 60, 55, 62
    assert t.ours_best_sd_pct == pytest.approx(math.sqrt(13.0), rel=1e-9)  # squares 1, 16, 9 over 2 degrees of freedom
    assert t.ours_best_ci95_pct == pytest.approx(T_975_2 * math.sqrt(13.0) / math.sqrt(3), rel=1e-9)


def test_why_sets_each_method_against_what_it_is_built_on(tmp_path, finish):
    """MultiTune against L2-SP, SpotTune against fine-tuning, L2-SP against fine-tuning: final epoch, paired by seed."""
    study = Study("smoke", results=tmp_path)
    accs = {"multitune": [0.36, 0.35, 0.37], "l2sp": [0.36, 0.36, 0.36], "spottune": [0.30, 0.31, 0.30],
            "finetune": [0.34, 0.34, 0.35]}
    for method, per_seed in accs.items():
        for seed, acc in enumerate(per_seed):
            finish(study, study.config(method, "aircraft", 4, seed), acc)
    w = report.why(study)
    assert w["contrast"].tolist() == ["MultiTune - L2-SP", "SpotTune - Fine-tuning", "L2-SP - Fine-tuning"]
    w = w.set_index("contrast")
    assert w.loc["MultiTune - L2-SP", "diff_pct"] == pytest.approx(0.0, abs=1e-9)  # 0, -1, +1 points
    assert w.loc["MultiTune - L2-SP", "ci95_pct"] == pytest.approx(T_975_2 / math.sqrt(3), rel=1e-6)
    assert w.loc["MultiTune - L2-SP", "verdict"] == "within the interval"
    assert w.loc["SpotTune - Fine-tuning", "diff_pct"] == pytest.approx(-4.0)  # -4, -3, -5 points
    assert w.loc["SpotTune - Fine-tuning", "verdict"] == "Fine-tuning better"
    assert w.loc["L2-SP - Fine-tuning", "diff_pct"] == pytest.approx(5 / 3)  # 2, 2, 1 points
    gap = report.verdict(study).query("measure == 'final'")["diff_pct"].item()  # 6, 4, 7 points
    assert gap == pytest.approx(w.loc["MultiTune - L2-SP", "diff_pct"] + w.loc["L2-SP - Fine-tuning", "diff_pct"]
                                - w.loc["SpotTune - Fine-tuning", "diff_pct"])
    report.write_table3(report.table3(study), tmp_path / "f", study.profile, report.verdict(study), report.why(study))
    assert "## Why?" in (tmp_path / "f" / "table3.md").read_text()
    assert "SpotTune - Fine-tuning" in (tmp_path / "f" / "why.csv").read_text()
    report.write_table3(report.table3(study), tmp_path / "g", study.profile, report.verdict(study),
                        report.why(Study("smoke", results=tmp_path / "empty")))
    assert "## Why?" not in (tmp_path / "g" / "table3.md").read_text() and not (tmp_path / "g" / "why.csv").exists()


def test_the_difference_from_the_paper_is_best_epoch_against_best_epoch(tmp_path):
    """The paper reports the best of its 110 epochs; only the paper profile's data and source make it comparable."""
    study = Study("paper", results=tmp_path)
    for seed, (final, best) in enumerate([(0.40, 0.50), (0.42, 0.48)]):
        finish_with_best(study, study.config("spottune", "aircraft", 20, seed), final, best)
    row = report.table3(study).set_index(["images_per_class", "method"]).loc[(20, "SpotTune")]
    assert row.ours_final_pct == pytest.approx(41.0) and row.ours_best_pct == pytest.approx(49.0)
    assert row.paper_best_pct == 45.60  # the paper's Table 3: Aircraft, 20 images per class, SpotTune
    assert row.diff_best_vs_paper_pct == pytest.approx(49.0 - 45.60)  # not 41.0 - 45.60: final against best


def test_fig2_bars_are_the_95_t_interval_of_the_mean(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for seed, acc in enumerate([0.5, 0.6, 0.7]):  # one validation per run: Fig. 2 against images per class
        finish(study, study.config("spottune", "aircraft", 4, seed), acc)
    fig = report.fig2(study)
    assert fig._suptitle.get_text().endswith("mean and 95% t-interval over seeds")
    ys = np.concatenate([line.get_ydata() for line in fig.axes[1].lines])  # (b) smaller Aircraft: point, bar, caps
    half = T_975_2 * 10 / math.sqrt(3)  # sd 10 points: the bar is 60 -/+ 24.84, where +/- 1 sd would be 50 to 70
    assert [np.nanmin(ys), np.nanmax(ys)] == pytest.approx([60 - half, 60 + half], rel=1e-9)


def test_fig2_axes_stop_at_100_percent_however_wide_the_interval(tmp_path, finish):
    """Two seeds 40 points apart: their t-interval (1 degree of freedom) reaches past 300%; the axis shows 0 to 100."""
    study = Study("smoke", results=tmp_path)
    for seed, acc in enumerate([0.5, 0.9]):
        finish(study, study.config("spottune", "aircraft", 4, seed), acc)
    ax = report.fig2(study).axes[1]
    assert np.nanmax(np.concatenate([line.get_ydata() for line in ax.lines])) > 300
    assert ax.get_ylim() == (0, 100)


def test_fig2_draws_each_few_shot_row_with_one_dash_pattern_whichever_rows_are_there():
    """The paper profile's rows 20, 15, 10, 5: 10 keeps its dashes in a panel that lacks 20 and 15, as in one with all."""
    rows = profiles.get("paper").few_shot_rows
    styles = [report.row_styles(pd.Series(present, name="images per class"), profiles.get("paper"))
              for present in ([10, 5, 10], [20, 15, 10, 5])]
    assert [dict(zip(st["style_order"], st["dashes"]))[10] for st in styles] == [report.ROW_DASHES[rows.index(10)]] * 2
    assert styles[0]["style_order"] == [10, 5] and len(set(map(str, styles[1]["dashes"]))) == 4


def test_fig2_legends_list_the_methods_in_one_order_whichever_finished_first(tmp_path):
    study = Study("smoke", results=tmp_path)
    spottune = study.config("spottune", "aircraft", 4, 0)
    # the store lists runs by digest, and seaborn orders a legend by first appearance: a MultiTune run listed first
    multitune = next(c for c in (study.config("multitune", "aircraft", 4, s) for s in range(50))
                     if c.digest() < spottune.digest())
    for cfg in (multitune, spottune):  # validated twice each: Fig. 2 against epoch
        finish_with_best(study, cfg, 0.5, 0.6)
    fig = report.fig2(study)
    names = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert [n for n in names if n in ("SpotTune", "MultiTune")] == ["SpotTune", "MultiTune"]


def test_the_methods_table_lists_only_the_rows_that_have_runs(tmp_path, finish):
    """Aircraft trained at 4 images per class and CIFAR-100 at 2: no empty (Aircraft, 2) or (CIFAR-100, 4) row."""
    study = Study("smoke", results=tmp_path)
    finish(study, study.config("spottune", "aircraft", 4, 0), 0.5)
    finish(study, study.config("multitune", "cifar100", 2, 0), 0.4)
    wide = report.methods_table(report.table3(study))
    aircraft, cifar = "Aircraft classes 1-3", "CIFAR100 classes 1-3"  # the smoke profile's subsets
    assert wide[["data", "images_per_class"]].astype(str).values.tolist() == [[aircraft, "4"], [cifar, "2"]]
    assert wide.set_index("data").loc[cifar, "MultiTune"] == "40.0"


def test_the_methods_table_keeps_the_whole_dataset_rows(tmp_path, finish):
    """The paper profile's whole-dataset row has no images_per_class: it is shown as "all", first, not dropped."""
    study = Study("paper", results=tmp_path)
    finish(study, study.config("spottune", "aircraft", None, 0), 0.5)
    finish(study, study.config("spottune", "aircraft", 20, 0), 0.4)
    wide = report.methods_table(report.table3(study))
    assert wide["images_per_class"].tolist() == ["all", 20]
    assert wide["SpotTune"].tolist() == ["50.0", "40.0"]


def test_the_readme_leads_with_the_committed_imagenet_cpu_tables():
    """The README's imagenet-cpu tables are copied from what notebooks 04 and 05 wrote; this keeps them honest."""
    readme = (paths.project_root() / "README.md").read_text()
    assert readme.index("<!-- results:imagenet-cpu") < readme.index("<!-- results:offline-cpu")
    block = readme.split("<!-- results:imagenet-cpu", 1)[1].split("<!-- end results -->", 1)[0]
    figures = paths.project_root() / "figures" / "imagenet-cpu"
    assert (figures / "methods.md").read_text() in block
    sections = dict(s.split("\n\n", 1) for s in (figures / "table3.md").read_text().split("\n## ")[1:])
    for title in ("Does MultiTune beat SpotTune?", "Why?"):
        assert sections[title].split("\n\n", 1)[1] in block  # the table itself, after its caption
