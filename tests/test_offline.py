"""The pieces that let the study run from a fresh clone: pretrain, data packs, the offline profiles, merging."""
import json
import tarfile
import zipfile

import pandas as pd
import pytest
import torch

from multitune_lib import cli, data, pack, paths, profiles, report, train
from multitune_lib.checkpoint import load_backbone, load_source
from multitune_lib.config import RunConfig
from multitune_lib.errors import ConfigError, DataError
from multitune_lib.models import resnet26
from multitune_lib.pretrain import class_spec, pretrain
from multitune_lib.results import ResultsStore
from multitune_lib.study import Study


def test_pack_serves_the_same_images_as_the_folder(toy_root, tmp_path):
    out = tmp_path / "toy.zip"
    info = pack.pack(toy_root, [("toy", "train", 2, None), ("toy", "val", None, (1, 2))], out, seeds=(0, 1))
    ref_train = data.load(toy_root, "toy", "train", 2, None, 1, cache=tmp_path / "c1")
    ref_val = data.load(toy_root, "toy", "val", None, (1, 2), 0, cache=tmp_path / "c1")
    # Two seeds of 2 shots over 4 classes draw up to 16 train images; val keeps classes 1-2 (12 images).
    assert info["images"] == len(set(ref_val.files) | set(ref_train.files) |
                                 set(data.load(toy_root, "toy", "train", 2, None, 0, cache=tmp_path / "c1").files))
    with zipfile.ZipFile(out) as z:
        assert z.getinfo(ref_val.files[0]).compress_type == zipfile.ZIP_STORED  # JPEG bytes as they are
        assert z.read(ref_val.files[0]) == (toy_root / ref_val.files[0]).read_bytes()
    got = data.load(out, "toy", "train", 2, None, 1, cache=tmp_path / "c2")
    assert got.files == ref_train.files and torch.equal(got.images, ref_train.images)
    assert torch.equal(got.labels, ref_train.labels)
    assert data.available(out) == ["toy"]
    with pytest.raises(DataError, match="not in the pack"):
        data.load(out, "toy", "val", cache=tmp_path / "c2")  # classes 3-4 of val were not packed


def test_a_file_that_is_not_a_pack_is_named(tmp_path):
    bad = tmp_path / "notes.zip"
    bad.write_text("hello")
    with pytest.raises(DataError, match="notes.zip is not a data pack"):
        data.annotations(bad, "toy", "train")


def test_pretrain_writes_a_source_model_and_never_overwrites_another(toy_root, tmp_path):
    out, results = tmp_path / "src.pt", tmp_path / "res"
    kw = dict(epochs=2, crop=32, out=out, data_root=toy_root, results=results, device="cpu", note="test")
    meta = pretrain("toy", (1, 2, 3), **kw)
    sd, stored = load_source(out)
    assert stored == meta == json.loads(out.with_suffix(".json").read_text())
    assert meta["classes"] == "1-3" and meta["num_classes"] == 3 and meta["train_images"] == 36
    assert meta["schedule"]["milestones"] == [1, 1] and meta["eval_size"] == 40 and meta["note"] == "test"
    assert 0 <= meta["final_val_acc"] <= 1 and len(meta["history"]) == 2 and meta["git_commit"]
    load_backbone(resnet26(7), sd)  # a backbone for any head
    stamp = out.stat().st_mtime_ns
    assert pretrain("toy", (1, 2, 3), **kw) == meta and out.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="--force"):
        pretrain("toy", (1, 2, 3), **{**kw, "epochs": 1})
    assert pretrain("toy", (1, 2, 3), **{**kw, "epochs": 1}, force=True)["epochs"] == 1


def test_class_spec():
    assert class_spec(range(1, 51)) == "1-50" and class_spec((1, 3)) == "1,3" and class_spec(None) == "all"


def test_scratch_refuses_a_source(toy_root, tmp_path):
    src = tmp_path / "src.pt"
    pretrain("toy", None, epochs=1, out=src, data_root=toy_root, results=tmp_path / "r", device="cpu")
    with pytest.raises(ConfigError, match="scratch"):
        train.run(RunConfig("scratch", "toy", epochs=1), data_root=toy_root, results=tmp_path / "r2", source=src,
                  device="cpu")


def test_eval_every_validates_only_where_asked(toy_root, tmp_path):
    cfg = RunConfig("spottune", "toy", epochs=3, eval_every=2, batch_size=16)
    row = train.run(cfg, data_root=toy_root, results=tmp_path, device="cpu", cache=tmp_path / "c")
    h = ResultsStore(tmp_path).history()
    assert h["val_acc"].isna().tolist() == [True, False, False]  # epoch 2, then the last
    assert h["usage.0"].isna().tolist() == [True, False, False]
    assert row["metrics"]["best_epoch"] in (2, 3)


def test_low_resolution_crop_must_fit_the_strides():
    with pytest.raises(ConfigError, match="multiple of 8"):
        RunConfig("finetune", "toy", crop=36)
    assert data.eval_side(64) == 72 and data.eval_side(32) == 40


def test_offline_profiles():
    off, cpu = profiles.get("offline"), profiles.get("offline-cpu")
    assert off.source == paths.default_source() and off.classes("cifar100") == tuple(range(51, 101))
    assert off.label("cifar100") == "CIFAR100 classes 51-100" and not off.paper_comparable
    assert off.milestones((20, 50, 80)) is None  # 110 epochs: the paper's own
    assert cpu.milestones((20, 50, 80)) == (3, 7, 11) and cpu.milestones((40, 60, 80)) == (5, 8, 11)
    parts = pack.parts(off)
    assert set(parts) == {"aircraft", "cifar100", "pretrain"}
    assert ("cifar100", "val", None, tuple(range(51, 101))) in parts["cifar100"]
    assert parts["pretrain"] == [("cifar100", "train", None, tuple(range(1, 51))),
                                 ("cifar100", "val", None, tuple(range(1, 51)))]
    if not torch.cuda.is_available():
        assert profiles.get("auto").name == "smoke"


def test_a_profile_run_uses_the_profile_schedule_and_skips_missing_full_rows(toy_root, tmp_path, monkeypatch):
    src = tmp_path / "src.pt"
    pretrain("toy", None, epochs=1, out=src, data_root=toy_root, results=tmp_path / "r", device="cpu")
    p = profiles.Profile("tiny", {"toy": None}, full_shots=None, shots=(2,), epochs=4, needs_source=True,
                         source=src, full_rows=False, eval_every=4, scale_schedule=True)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    study = Study("tiny", toy_root, results=tmp_path / "store", device="cpu")
    assert study.run_all(["multitune"]).empty  # no whole-dataset rows in this profile
    runs = study.run_all(["multitune"], shots=(2,))
    row = ResultsStore(tmp_path / "store").rows()[0]
    assert len(runs) == 1 and row["config"]["milestones"] == [1, 2, 3] and row["config"]["eval_every"] == 4
    assert row["config"]["source_sha256"] and row["tags"]["profile"] == "tiny"


def test_merge_from_the_command_line_is_idempotent(toy_root, tmp_path, capsys):
    cfg = RunConfig("feature", "toy", epochs=1)
    train.run(cfg, data_root=toy_root, results=tmp_path / "gpu", device="cpu", cache=tmp_path / "c")
    argv = ["results", "merge", str(tmp_path / "gpu"), "--into", str(tmp_path / "local")]
    assert cli.main(argv) == 0 and "1 new runs" in capsys.readouterr().out
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert cli.main(argv) == 0 and "0 new runs" in capsys.readouterr().out
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "local").rglob("*") if p.is_file()) == before
    with tarfile.open(tmp_path / "gpu.tgz", "w:gz") as tar:
        tar.add(tmp_path / "gpu", arcname="results/offline")
    argv = ["results", "merge", str(tmp_path / "gpu.tgz"), "--into", str(tmp_path / "fromtar")]
    assert cli.main(argv) == 0 and "1 new runs" in capsys.readouterr().out
    assert ResultsStore(tmp_path / "fromtar").runs().equals(ResultsStore(tmp_path / "local").runs())
    assert cli.main(["results", "merge", str(tmp_path), "--into", str(tmp_path / "x")]) == 2
    assert "is not a results store" in capsys.readouterr().err


def test_the_committed_source_model_is_what_its_metadata_says():
    path = paths.default_source()
    assert path.exists(), f"{path} is missing: a fresh clone must have a source model"
    assert path.stat().st_size < 25 * 2**20
    sd, meta = load_source(path)
    assert meta["origin"] == "multitune pretrain" and meta["dataset"] == "cifar100" and meta["classes"] == "1-50"
    assert meta["train_images"] == 20000 and meta["val_images"] == 5000 and meta["num_classes"] == 50
    assert meta["history"][-1]["val_acc"] == meta["final_val_acc"] > 0.02  # better than chance on 50 classes
    load_backbone(resnet26(100), sd)


def test_an_empty_study_reads_as_empty_tables(tmp_path):
    study = Study("smoke", results=tmp_path / "store")
    assert study.runs().empty and study.history().empty
    h = study.history()
    assert h[(h["method"] == "spottune") & (h["row"] == "all")].empty  # what notebooks 01 and 02 select
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


def test_study_parameters_from_the_command_line(tmp_path):
    from multitune_lib.study import parse_value

    assert parse_value("[0, 1]") == [0, 1] and parse_value("0.01") == 0.01 and parse_value("None") is None
    assert parse_value("cuda") == "cuda" and parse_value("/data/decathlon-1.0") == "/data/decathlon-1.0"
    assert Study("smoke", results=tmp_path, seeds=[0, 1]).seeds == (0, 1)
    assert Study("smoke", results=tmp_path, seeds=3).seeds == (3,)
    assert Study("offline-cpu", results=tmp_path).seeds == (0, 1)
    with pytest.raises(ConfigError, match="seeds='0 1'"):
        Study("smoke", results=tmp_path, seeds="0 1")


def test_fig2_of_a_profile_validated_once_per_run_plots_images_per_class():
    """offline-cpu validates after the last epoch only: against epoch its points would sit on one another."""
    fig = report.fig2(Study("offline-cpu"))
    smaller = fig.axes[1]
    assert [t.get_text() for t in smaller.get_xticklabels()] == ["15", "10", "5"]
    assert smaller.get_xlabel() == "images per class (validated after epoch 15 only)"
    assert [t.get_text() for t in smaller.get_legend().get_texts()] == ["SpotTune", "MultiTune"]


def test_table3_names_every_device_and_precision_its_seeds_ran_on():
    t = report.table3(Study("offline-cpu")).set_index(["images_per_class", "method"])
    # 10 and 5 shots: seed 0 recorded the machine as x86_64, seed 1 by its CPU model; 15 shots ran on a bf16 CPU
    assert t.loc[("10", "SpotTune"), "device"] == "AMD EPYC, x86_64" and (t["seeds"] == 2).all()
    assert t.loc[("15", "SpotTune"), "precision"] == "bfloat16" and t.loc[("5", "MultiTune"), "precision"] == "float32"


def test_fig2_pdf_carries_no_creation_date(tmp_path):
    """Otherwise every redraw of an unchanged store would change the committed PDF."""
    report.save_fig(report.fig2(Study("offline-cpu")), tmp_path)
    assert b"/CreationDate" not in (tmp_path / "fig2.pdf").read_bytes()
