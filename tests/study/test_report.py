"""Table 3 and Fig. 2 from the results store alone: the committed offline-cpu figures redraw byte for byte."""
import pandas as pd
import pytest

from multitune_lib import paths
from multitune_lib.study import Study, report

COMMITTED = paths.project_root() / "figures" / "offline-cpu"


def test_an_empty_study_reads_as_empty_tables(tmp_path):
    study = Study("smoke", results=tmp_path / "store")
    assert study.runs().empty and study.history().empty
    h = study.history()
    assert h[(h["method"] == "spottune") & h["full_row"] & h["main"]].empty  # what notebooks 01 and 02 select
    t = report.table3(study)  # what notebook 04 makes of it
    assert t.empty and {"ours_val_acc_pct", "paper_val_acc_pct", "device", "precision"} <= set(t.columns)
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
        assert (acc, sd, minutes) == (f"{row.ours_val_acc_pct:.2f}", f"{row.ours_val_acc_sd_pct:.2f}",
                                      f"{row.ours_minutes:.1f}")
        assert (float(paper_acc), float(paper_minutes)) == (row.paper_val_acc_pct, row.paper_minutes)


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
    assert t["profile"].eq("offline-cpu").all() and t["diff_pct"].isna().all()  # our source is not the paper's
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


def test_verdict_pairs_seeds_and_needs_the_interval_to_exclude_zero(tmp_path, finish):
    study = Study("smoke", results=tmp_path)
    for seed, (mt, st) in enumerate([(0.60, 0.50), (0.62, 0.51), (0.61, 0.52)]):  # MultiTune ahead on every seed
        finish(study, study.config("multitune", "aircraft", 4, seed), mt)
        finish(study, study.config("spottune", "aircraft", 4, seed), st)
    for seed, (mt, st) in enumerate([(0.40, 0.50), (0.55, 0.45), (0.50, 0.50)]):  # no clear winner
        finish(study, study.config("multitune", "aircraft", 2, seed), mt)
        finish(study, study.config("spottune", "aircraft", 2, seed), st)
    v = report.verdict(study).set_index("images_per_class")
    assert v.loc[4, "verdict"] == "MultiTune better" and v.loc[4, "diff_pct"] == pytest.approx(10.0)
    assert v.loc[4, "ci95_pct"] == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-3)  # t(0.975, 2) x sd / sqrt(3)
    assert v.loc[2, "verdict"] == "within the interval" and list(v.index) == [4, 2]
    t = report.table3(study).set_index(["images_per_class", "method"])
    assert t.loc[(4, "MultiTune"), "ours_ci95_pct"] == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-3)
    report.write_table3(report.table3(study), tmp_path / "f", study.profile, report.verdict(study))
    assert "Does MultiTune beat SpotTune?" in (tmp_path / "f" / "table3.md").read_text()
    assert "MultiTune better" in (tmp_path / "f" / "verdict.csv").read_text()
    assert report.verdict(Study("smoke", results=tmp_path / "empty")).empty


def test_the_readme_leads_with_the_committed_imagenet_cpu_tables():
    """The README's imagenet-cpu tables are copied from what notebooks 04 and 05 wrote; this keeps them honest."""
    readme = (paths.project_root() / "README.md").read_text()
    assert readme.index("<!-- results:imagenet-cpu") < readme.index("<!-- results:offline-cpu")
    block = readme.split("<!-- results:imagenet-cpu", 1)[1].split("<!-- end results -->", 1)[0]
    figures = paths.project_root() / "figures" / "imagenet-cpu"
    assert (figures / "methods.md").read_text() in block
    verdict = (figures / "table3.md").read_text().split("## Does MultiTune beat SpotTune?", 1)[1]
    assert verdict.split("\n\n", 2)[2] in block  # the verdict table itself
