"""Table 3, the verdict and the "why" contrasts from the results store alone: the committed tables are what the
committed stores give, and what a person reads is rounded from the same numbers the CSVs keep in full."""
import dataclasses
import math
import statistics

import pandas as pd
import pytest

from multitune_lib import paths
from multitune_lib.study import Study, stats, tables

ROOT = paths.project_root()
T_975_2 = 4.302652729749464  # Student t, 97.5% quantile, 2 degrees of freedom (three seeds): from a t table


def p_two_seeds_of_freedom(t: float) -> float:
    """Two-sided p of Student's t with 2 degrees of freedom, in closed form: 1 - t / sqrt(t^2 + 2)."""
    return 1 - abs(t) / math.sqrt(t * t + 2)


def tables_of(study):
    return study, tables.table3(study), tables.verdict(study), tables.why(study)


@pytest.fixture(scope="module")
def imagenet_cpu():
    return tables_of(Study("imagenet-cpu"))


def test_an_empty_study_reads_as_empty_tables(tmp_path):
    study = Study("smoke", results=tmp_path / "store")
    assert study.runs().empty and study.history().empty
    h = study.history()
    assert h[(h["method"] == "spottune") & h["full_row"] & h["main"]].empty  # what notebooks 01 and 02 select
    t = tables.table3(study)  # what notebook 04 makes of it
    assert t.empty and {"ours_final_pct", "ours_final_ci95_pct", "paper_best_pct", "seeds"} <= set(t.columns)
    tables.write_table3(t, tmp_path / "figures", study.profile, tables.verdict(study), tables.why(study))
    md = (tmp_path / "figures" / "table3.md").read_text()
    assert "# Table 3 (smoke profile)" in md and "No finished run of this profile" in md
    assert tables.printed_table3(t).empty and tables.printed_differences(tables.verdict(study)).empty


def test_the_results_page_shows_the_committed_offline_cpu_table3():
    """docs/results.md's offline-cpu table is copied by hand; this keeps it honest against what the study wrote."""
    page = (ROOT / "docs" / "results.md").read_text()
    block = page.split("<!-- results:offline-cpu", 1)[1].split("<!-- end results -->", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[3:] if line.startswith("|")]
    t = pd.read_csv(ROOT / "figures" / "offline-cpu" / "table3.csv")
    assert len(rows) == len(t)
    for label, shots, method, acc, sd, minutes, paper_acc, paper_minutes in rows:
        row = t[(t["data"] == label) & (t["images_per_class"].astype(str) == shots) & (t["method"] == method)]
        assert len(row) == 1, (label, shots, method)
        row = row.iloc[0]
        assert (acc, sd, minutes) == (f"{row.ours_final_pct:.2f}", f"{row.ours_final_sd_pct:.2f}",
                                      f"{row.ours_minutes:.1f}")
        assert (float(paper_acc), float(paper_minutes)) == (row.paper_best_pct, row.paper_minutes)


@pytest.mark.parametrize("page", ["README.md", "docs/results.md"])
def test_the_pages_show_the_committed_imagenet_cpu_methods_table(page):
    """The front page and the results page copy the imagenet-cpu table notebook 05 wrote; this keeps them honest."""
    text = (ROOT / page).read_text()
    block = text.split("<!-- results:imagenet-cpu", 1)[1].split("<!-- end results -->", 1)[0]
    assert (ROOT / "figures" / "imagenet-cpu" / "methods.md").read_text() in block


def test_the_results_page_shows_the_committed_verdict_and_why():
    """docs/results.md copies the verdict and the contrasts of table3.md by hand; this keeps them honest."""
    page = (ROOT / "docs" / "results.md").read_text()
    block = page.split("<!-- results:imagenet-cpu", 1)[1].split("<!-- end results -->", 1)[0]
    md = (ROOT / "figures" / "imagenet-cpu" / "table3.md").read_text()
    sections = dict(s.split("\n\n", 1) for s in md.split("\n## ")[1:])
    for title in ("Does MultiTune beat SpotTune?", "Why?"):
        assert sections[title].split("\n\n", 1)[1] in block, title  # the table itself, after its caption


def test_table3_names_every_device_and_precision_its_seeds_ran_on():
    t = tables.table3(Study("offline-cpu")).set_index(["images_per_class", "method"])
    # 10 and 5 images per class: seed 0 recorded the machine as x86_64, seed 1 by its CPU model; 15 ran on a bf16 CPU
    assert t.loc[(10, "SpotTune"), "device"] == "AMD EPYC, x86_64" and (t["seeds"] == 2).all()
    assert t.loc[(15, "SpotTune"), "precision"] == "bfloat16" and t.loc[(5, "MultiTune"), "precision"] == "float32"
    assert "on AMD EPYC, x86_64, precision bfloat16, float32." in tables.table3_caption(t.reset_index())


@pytest.mark.parametrize("profile, names", [
    ("offline-cpu", ("table3.csv", "table3.md", "verdict.csv")),
    ("imagenet-cpu", ("table3.csv", "table3.md", "verdict.csv", "why.csv", "methods.csv", "methods.md"))])
def test_the_committed_tables_are_what_the_committed_store_gives(tmp_path, imagenet_cpu, profile, names):
    study, t, v, w = imagenet_cpu if profile == "imagenet-cpu" else tables_of(Study(profile))
    tables.write_table3(t, tmp_path, study.profile, v, w)
    tables.write_methods(t, tmp_path)
    for name in names:
        assert (tmp_path / name).read_bytes() == (ROOT / "figures" / profile / name).read_bytes(), name


def test_the_printed_table3_is_the_paper_s_layout_rounded_from_the_csv(imagenet_cpu):
    """Rows in the paper's order, SpotTune and MultiTune side by side with the paper's numbers labelled as the
    paper's, and nothing a caption can say once: no epochs, device, precision or seeds column."""
    _, t, _, _ = imagenet_cpu
    printed = tables.printed_table3(t)
    assert [(d, str(n)) for d, n in printed.index] == [("Aircraft", n) for n in ("all", "20", "15", "10", "5")] + \
        [("CIFAR100", n) for n in ("20", "15", "10", "5")]
    assert list(printed.columns) == [f"{m} {c}" for m in ("SpotTune", "MultiTune")
                                     for c in ("%", "paper %", "min", "paper min")]
    row = t[(t["method"] == "SpotTune") & t["images_per_class"].isna()].iloc[0]
    cell = printed.loc[("Aircraft", "all")]
    assert cell["SpotTune %"] == f"{row.ours_final_pct:.1f} ± {row.ours_final_ci95_pct:.1f}" == "41.9 ± 2.8"
    assert (cell["SpotTune paper %"], cell["SpotTune min"]) == ("55.15", f"{row.ours_minutes:.0f}")  # paper: Table 3
    others = tables.printed_others(t)
    assert list(others.columns) == ["Fine-tuning", "L2-SP", "Feature extraction", "AMF"] and len(others) == 9
    caption = tables.table3_caption(t)
    assert "final epoch (15)" in caption and "over 3 seeds" in caption and "best epoch" in caption


def test_the_verdict_shows_the_final_epoch_once_with_holm_over_the_nine_rows(imagenet_cpu):
    _, _, v, w = imagenet_cpu
    assert v["measure"].eq("final").all() and len(v) == 9  # the best epoch is the final one in every row
    assert v["p_holm"].tolist() == pytest.approx(stats.holm(v["p"]).tolist())  # one family of nine tests
    assert v["p_holm"].ge(v["p"]).all() and v["ahead"].le(v["seeds"]).all()
    printed = tables.printed_differences(v)
    assert "epoch" not in printed and printed.loc[("Aircraft", "all"), "ahead in"] == "3 of 3 seeds"
    assert len(w) == 27 and set(w["contrast"]) == {"MultiTune - L2-SP", "SpotTune - Fine-tuning", "L2-SP - Fine-tuning"}


def test_table3_beside_the_paper():
    t = tables.table3(Study("offline-cpu"))
    assert t["profile"].eq("offline-cpu").all() and t["diff_best_vs_paper_pct"].isna().all()  # not the paper's source
    assert t[["method", "images_per_class"]].apply(tuple, axis=1).tolist() == \
        [("MultiTune", 15), ("MultiTune", 10), ("MultiTune", 5), ("SpotTune", 15), ("SpotTune", 10), ("SpotTune", 5)]
    paper = tables.paper_table3()
    assert paper["images_per_class"].dtype == pd.Int64Dtype() and paper["images_per_class"].isna().any()
    order = sorted(paper["images_per_class"].drop_duplicates(), key=tables.row_key)
    assert [None if pd.isna(n) else int(n) for n in order] == [None, 20, 15, 10, 5]  # the paper's row order
    shown = tables.shown(paper)
    assert "all" in shown["images_per_class"].tolist() and 20 in shown["images_per_class"].tolist()


def test_markdown():
    df = pd.DataFrame({"a": ["x", "y"], "b": [1.234, float("nan")], "c": [3, 4]})
    assert tables.markdown(df) == "| a | b | c |\n|---|---|---|\n| x | 1.23 | 3 |\n| y |  | 4 |\n"


def test_numbers_are_rounded_for_reading():
    assert (tables.pm(37.0, 2.349), tables.pm(-8.69, 1.99, signed=True), tables.pm(5.0, math.nan)) == \
        ("37.0 ± 2.3", "-8.7 ± 2.0", "5.0")
    assert [tables.minutes(m) for m in (26.8, 0.4, math.nan)] == ["27", "< 1", ""]
    assert [tables.p_value(p) for p in (0.0413, 0.0004, math.nan)] == ["0.041", "< 0.001", ""]


def test_verdict_pairs_seeds_and_adjusts_for_the_rows_tested(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for seed, (mt, st) in enumerate([(0.60, 0.50), (0.62, 0.51), (0.61, 0.52)]):  # MultiTune ahead on every seed
        finish(study, study.config("multitune", "aircraft", 4, seed), mt)
        finish(study, study.config("spottune", "aircraft", 4, seed), st)
    for seed, (mt, st) in enumerate([(0.40, 0.50), (0.55, 0.45), (0.50, 0.50)]):  # no clear winner
        finish(study, study.config("multitune", "aircraft", 2, seed), mt)
        finish(study, study.config("spottune", "aircraft", 2, seed), st)
    v = tables.verdict(study)
    assert v["measure"].tolist() == ["final"] * 2 and v["images_per_class"].tolist() == [4, 2]  # best = final
    v = v.set_index("images_per_class")
    assert v.loc[4, "verdict"] == "MultiTune better" and v.loc[4, "diff_pct"] == pytest.approx(10.0)
    assert v.loc[4, "ci95_pct"] == pytest.approx(T_975_2 * 1.0 / 3 ** 0.5, rel=1e-6)  # differences 10, 11, 9: sd 1
    p4 = p_two_seeds_of_freedom(10 * math.sqrt(3))  # t = mean / (sd / sqrt 3)
    assert v.loc[4, "p"] == pytest.approx(p4, rel=1e-6) and v.loc[2, "p"] == pytest.approx(1.0)  # -10, 10, 0
    assert v["p_holm"].tolist() == pytest.approx([2 * p4, 1.0], rel=1e-6)  # two rows: the smaller p doubled
    assert (v.loc[4, "ahead"], v.loc[2, "ahead"]) == (3, 1) and v.loc[2, "verdict"] == "within the interval"
    t = tables.table3(study).set_index(["images_per_class", "method"])
    assert t.loc[(4, "MultiTune"), "ours_final_ci95_pct"] == pytest.approx(T_975_2 * 1.0 / 3 ** 0.5, rel=1e-6)
    tables.write_table3(tables.table3(study), tmp_path / "f", study.profile, tables.verdict(study))
    md = (tmp_path / "f" / "table3.md").read_text()
    assert "Does MultiTune beat SpotTune?" in md and "95% Student-t interval" in md and "Holm" in md
    assert "| Aircraft classes 1-3 | 4 | +10.0 ± 2.5 | 0.0033 | 0.0066 | 3 of 3 seeds | MultiTune better |" in md
    assert "MultiTune better" in (tmp_path / "f" / "verdict.csv").read_text()
    assert tables.verdict(Study("smoke", results=tmp_path / "empty")).empty


def test_verdict_at_the_final_and_the_best_epoch_worked_by_hand(tmp_path, finish):
    """Seeds pair up (a seed draws the same few-shot images for both methods): MultiTune minus SpotTune per seed;
    the best epoch gets a row of its own only where it is not the final one."""
    study = Study("smoke", results=tmp_path)
    finals = [(0.50, 0.40), (0.60, 0.55), (0.70, 0.62)]  # differences 10, 5, 8 points
    bests = [(0.55, 0.60), (0.60, 0.55), (0.70, 0.62)]  # differences -5, 5, 8 points
    for seed, ((mt, st), (mt_best, st_best)) in enumerate(zip(finals, bests)):
        finish(study, study.config("multitune", "aircraft", 4, seed), mt, mt_best)
        finish(study, study.config("spottune", "aircraft", 4, seed), st, st_best)
    finish(study, study.config("multitune", "aircraft", 2, 0), 0.30, 0.35)  # one seed, best = final + 5
    finish(study, study.config("spottune", "aircraft", 2, 0), 0.20, 0.25)  # for both: no best-epoch row
    v = tables.verdict(study)
    assert list(zip(v["images_per_class"], v["measure"])) == [(4, "final"), (4, "best"), (2, "final")]
    v = v.set_index(["images_per_class", "measure"])
    final, best = v.loc[(4, "final")], v.loc[(4, "best")]
    # mean 23/3; sd sqrt(((7/3)^2 + (8/3)^2 + (1/3)^2) / 2) = 2.5166115; half-width t x sd / sqrt(3)
    assert (final.seeds, final.verdict, final.ahead) == (3, "MultiTune better", 3)
    assert final.diff_pct == pytest.approx(23 / 3)
    assert final.ci95_pct == pytest.approx(T_975_2 * 2.5166115 / math.sqrt(3), rel=1e-6)  # 6.2516095
    assert final.p == pytest.approx(p_two_seeds_of_freedom(23 / 3 / (2.5166115 / math.sqrt(3))), rel=1e-6)
    assert final.p_holm == final.p and best.p_holm == best.p  # one test each with two seeds or more
    # mean 8/3; sd sqrt(834 / 18) = 6.8068593: the interval (-14.2, 19.6) holds 0
    assert (best.verdict, best.ahead) == ("within the interval", 2) and best.diff_pct == pytest.approx(8 / 3)
    assert best.ci95_pct == pytest.approx(T_975_2 * 6.8068593 / math.sqrt(3), rel=1e-6)  # 16.909176
    one = v.loc[(2, "final")]
    assert (one.seeds, one.verdict) == (1, "one seed: no interval") and one.diff_pct == pytest.approx(10.0)
    assert math.isnan(one.ci95_pct) and math.isnan(one.p) and math.isnan(one.p_holm)
    assert tables.printed_differences(tables.verdict(study))["epoch"].tolist() == ["final", "best", "final"]
    t = tables.table3(study).set_index(["images_per_class", "method"]).loc[(4, "SpotTune")]
    assert t.ours_final_pct == pytest.approx(157 / 3) and t.ours_best_pct == pytest.approx(59.0)  # 60, 55, 62
    assert t.ours_best_sd_pct == pytest.approx(math.sqrt(13.0), rel=1e-9)  # squares 1, 16, 9 over 2 degrees of freedom
    assert t.ours_best_ci95_pct == pytest.approx(T_975_2 * math.sqrt(13.0) / math.sqrt(3), rel=1e-9)


def test_the_printed_table3_adds_the_best_epoch_only_where_it_departs(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for seed, (final, best) in enumerate([(0.40, 0.60), (0.55, 0.55), (0.62, 0.62)]):  # seed 0 peaked earlier
        finish(study, study.config("spottune", "aircraft", 4, seed), final, best)
        finish(study, study.config("multitune", "aircraft", 4, seed), 0.5)
    finish(study, study.config("spottune", "aircraft", 2, 0), 0.3)
    t = tables.table3(study)
    printed = tables.printed_table3(t)
    assert list(printed.columns) == ["SpotTune %", "SpotTune best %", "SpotTune min", "SpotTune seeds", "MultiTune %",
                                     "MultiTune min", "MultiTune seeds"]  # MultiTune's best is its final
    half = T_975_2 * statistics.stdev([40, 55, 62]) / math.sqrt(3)
    aircraft = "Aircraft classes 1-3"
    assert printed.loc[(aircraft, 4), "SpotTune %"] == f"{157 / 3:.1f} ± {half:.1f}"
    assert printed.loc[(aircraft, 4), "SpotTune best %"] == f"59.0 ± {T_975_2 * math.sqrt(13) / math.sqrt(3):.1f}"
    assert printed.loc[(aircraft, 2), "SpotTune best %"] == ""  # one seed, best = final: nothing to add
    assert printed.loc[(aircraft, 2), "MultiTune %"] == "" and printed.loc[(aircraft, 2), "SpotTune seeds"] == "1"
    assert "paper" not in " ".join(printed.columns)  # the smoke rows are not the paper's
    caption = tables.table3_caption(t)
    assert "Best: our best epoch" in caption and "seeds columns" in caption and "paper" not in caption


def test_why_sets_each_method_against_what_it_is_built_on(tmp_path, finish):
    """MultiTune against L2-SP, SpotTune against fine-tuning, L2-SP against fine-tuning: final epoch, paired by seed."""
    study = Study("smoke", results=tmp_path)
    accs = {"multitune": [0.36, 0.35, 0.37], "l2sp": [0.36, 0.36, 0.36], "spottune": [0.30, 0.31, 0.30],
            "finetune": [0.34, 0.34, 0.35]}
    for method, per_seed in accs.items():
        for seed, acc in enumerate(per_seed):
            finish(study, study.config(method, "aircraft", 4, seed), acc)
    w = tables.why(study)
    assert w["contrast"].tolist() == ["MultiTune - L2-SP", "SpotTune - Fine-tuning", "L2-SP - Fine-tuning"]
    w = w.set_index("contrast")
    assert w.loc["MultiTune - L2-SP", "diff_pct"] == pytest.approx(0.0, abs=1e-9)  # 0, -1, +1 points
    assert w.loc["MultiTune - L2-SP", "ci95_pct"] == pytest.approx(T_975_2 / math.sqrt(3), rel=1e-6)
    assert w.loc["MultiTune - L2-SP", "verdict"] == "within the interval"
    assert w.loc["SpotTune - Fine-tuning", "diff_pct"] == pytest.approx(-4.0)  # -4, -3, -5 points
    assert w.loc["SpotTune - Fine-tuning", "verdict"] == "Fine-tuning better"
    assert w.loc["L2-SP - Fine-tuning", "diff_pct"] == pytest.approx(5 / 3)  # 2, 2, 1 points
    gap = tables.verdict(study).query("measure == 'final'")["diff_pct"].item()  # 6, 4, 7 points
    assert gap == pytest.approx(w.loc["MultiTune - L2-SP", "diff_pct"] + w.loc["L2-SP - Fine-tuning", "diff_pct"]
                                - w.loc["SpotTune - Fine-tuning", "diff_pct"])
    tables.write_table3(tables.table3(study), tmp_path / "f", study.profile, tables.verdict(study), tables.why(study))
    md = (tmp_path / "f" / "table3.md").read_text()
    assert "## Why?" in md and "| SpotTune - Fine-tuning | -4.0 ± 2.5 |" in md
    assert "SpotTune - Fine-tuning" in (tmp_path / "f" / "why.csv").read_text()
    tables.write_table3(tables.table3(study), tmp_path / "g", study.profile, tables.verdict(study),
                        tables.why(Study("smoke", results=tmp_path / "empty")))
    assert "## Why?" not in (tmp_path / "g" / "table3.md").read_text() and not (tmp_path / "g" / "why.csv").exists()


def test_the_difference_from_the_paper_is_best_epoch_against_best_epoch(tmp_path, finish):
    """The paper reports the best of its 110 epochs; only the paper profile's data and source make it comparable."""
    study = Study("paper", results=tmp_path)
    for seed, (final, best) in enumerate([(0.40, 0.50), (0.42, 0.48)]):
        finish(study, study.config("spottune", "aircraft", 20, seed), final, best)
    t = tables.table3(study)
    row = t.set_index(["images_per_class", "method"]).loc[(20, "SpotTune")]
    assert row.ours_final_pct == pytest.approx(41.0) and row.ours_best_pct == pytest.approx(49.0)
    assert row.paper_best_pct == 45.60  # the paper's Table 3: Aircraft, 20 images per class, SpotTune
    assert row.diff_best_vs_paper_pct == pytest.approx(49.0 - 45.60)  # not 41.0 - 45.60: final against best
    printed = tables.printed_table3(t).loc[("Aircraft", 20)]
    assert (printed["SpotTune paper %"], printed["SpotTune best - paper"]) == ("45.60", "+3.4")


def test_the_methods_table_lists_only_the_rows_that_have_runs(tmp_path, finish):
    """Aircraft trained at 4 images per class and CIFAR-100 at 2: no empty (Aircraft, 2) or (CIFAR-100, 4) row."""
    study = Study("smoke", results=tmp_path)
    finish(study, study.config("spottune", "aircraft", 4, 0), 0.5)
    finish(study, study.config("multitune", "cifar100", 2, 0), 0.4)
    wide = tables.methods_table(tables.table3(study))
    aircraft, cifar = "Aircraft classes 1-3", "CIFAR100 classes 1-3"  # the smoke profile's subsets
    assert wide[["data", "images_per_class"]].astype(str).values.tolist() == [[aircraft, "4"], [cifar, "2"]]
    assert wide.set_index("data").loc[cifar, "MultiTune"] == "40.0"


def test_the_methods_table_keeps_the_whole_dataset_rows(tmp_path, finish):
    """The paper profile's whole-dataset row has no images_per_class: it is shown as "all", first, not dropped."""
    study = Study("paper", results=tmp_path)
    finish(study, study.config("spottune", "aircraft", None, 0), 0.5)
    finish(study, study.config("spottune", "aircraft", 20, 0), 0.4)
    wide = tables.methods_table(tables.table3(study))
    assert wide["images_per_class"].tolist() == ["all", 20]
    assert wide["SpotTune"].tolist() == ["50.0", "40.0"]


def test_table3_s_caption_counts_its_own_methods_and_the_other_methods_theirs(tmp_path, finish):
    """A method still training (one seed) beside SpotTune and MultiTune (two): Table 3 says two seeds, the other
    methods' caption says how many theirs have."""
    study = Study("smoke", results=tmp_path)
    study.profile = dataclasses.replace(study.profile, methods=("finetune", "l2sp", "spottune", "multitune"))
    for seed in (0, 1):
        for method in ("spottune", "multitune", "l2sp"):
            finish(study, study.config(method, "aircraft", 4, seed), 0.5 + seed / 10)
    finish(study, study.config("finetune", "aircraft", 4, 0), 0.4)
    t = tables.table3(study)
    assert "interval over 2 seeds," in tables.table3_caption(t)
    assert "interval over 1 to 2 seeds (one seed: no ±), on test, precision float32." in tables.others_caption(t)
    t_975_1 = 12.706204736174707  # Student t, 97.5% quantile, 1 degree of freedom (two seeds): from a t table
    assert list(tables.printed_others(t).iloc[0]) == ["40.0", f"55.0 ± {t_975_1 * 5:.1f}"]  # sd 7.07, /sqrt(2): 5
