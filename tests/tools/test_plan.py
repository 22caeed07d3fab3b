"""`plan`: a profile's runs, image passes and minutes at the measured speed, before anything trains."""
from multitune_lib.study import Study, profiles
from multitune_lib.tools import cli, plan


def test_plan_counts_images_and_minutes_and_skips_finished_runs(toy_root, tmp_path, monkeypatch, capsys, finish):
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2, 1), epochs=4, seeds=(0, 1),
                         eval_every=2, methods=("finetune", "multitune"), has_full_rows=False)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    study = Study("tiny", toy_root, results=tmp_path, device="cpu")
    finish(study, study.config("multitune", "toy", 1, 1))
    everything = plan.plan(study, "cpu", steps=1, batch=8)
    said = capsys.readouterr().err  # each speed timed now is said before its minutes of waiting
    assert "timing finetune on cpu: the store has no finished run of it" in said and "timing spottune" in said
    df = everything[everything["part"] == "profile"]
    assert len(df) == 8 and df["done"].sum() == 1  # 2 methods x 2 rows x 2 seeds
    extra = everything[everything["part"] == "ablation"]  # notebook 06 on toy, 2 per class: what the profile lacks
    assert len(extra) == 2 * 13 and set(extra["method"]) == {"multitune", "spottune"}  # MultiTune's paper run is main
    assert (extra["images_per_class"] == 2).all() and not extra["done"].any() and extra["digest"].is_unique
    assert set(df["train_images"]) == {8, 4} and (df["validations"] == 2).all()  # 4 classes; 6 val images each
    row = df[(df["method"] == "finetune") & (df["images_per_class"] == 2)].iloc[0]
    assert row["image_passes"] == 4 * 8 + 2 * 24 and row["minutes"] > 0
    assert df.loc[df["done"], "minutes_left"].eq(0).all() and (df["minutes_left"] > 0).sum() == 7
    assert cli.main(["plan", "--profile", "tiny", "--device", "cpu", "--steps", "1", "--results", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err  # the data root is the project's, where no toy dataset lives


def test_plan_takes_speeds_from_finished_runs(toy_root, tmp_path, monkeypatch):
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2,), epochs=3, methods=("finetune",),
                         has_full_rows=False)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    study = Study("tiny", toy_root, results=tmp_path, device="cpu")
    study.run("finetune", "toy", 2, 0)
    train, evaluate = plan.measured(study)["finetune"]
    h = study.history()
    assert train == (8 / h["train_seconds"]).median() and evaluate > 0
    # the last epoch suspended for a long while: the median epoch still sets the pace, not the total time
    stop = h["train_seconds"] * [0, 0, 999]
    paused = h.assign(train_seconds=h["train_seconds"] + stop, seconds=h["seconds"] + stop)
    monkeypatch.setattr(study, "history", lambda: paused)
    fast = 8 / h["train_seconds"].iloc[:2]
    assert fast.min() <= plan.measured(study)["finetune"][0] <= fast.max()
    monkeypatch.setattr(plan.bench, "ours", None)  # a timing would fail: the store's figures are used
    assert plan.plan(study, "cpu", with_ablation=False)["done"].all()


def test_gpu_minutes_scale_by_the_reference_speed_and_spread_longest_first():
    import pandas as pd
    df = pd.DataFrame({"part": ["profile", "profile", "profile", "ablation"], "minutes": [60.0, 30.0, 30.0, 20.0]})
    df = plan.on_gpu(df, {"finetune": (50.0, 100.0)}, gpu_speed=1000.0)  # here 50 images/s: the GPU 20x faster
    assert df["gpu_minutes"].tolist() == [3.0, 1.5, 1.5, 1.0]
    assert plan.wall_minutes(df["gpu_minutes"], 1) == 7.0
    assert plan.wall_minutes(df["gpu_minutes"], 2) == 4.0  # 3 + 1 beside 1.5 + 1.5
    assert plan.wall_minutes(df["gpu_minutes"], 64) == 3.0  # never less than the longest run
    table = plan.cost_table(df, gpus=(1, 2))
    assert table["part"].tolist() == ["all", "profile", "ablation"] and table["runs"].tolist() == [4, 3, 1]
    assert table.loc[1, "gpu_minutes"] == 6.0 and table.loc[1, "wall_minutes_2_gpus"] == 3.0


def test_the_plan_holds_notebook_02s_eta_sweep_once(toy_root, tmp_path, monkeypatch):
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2,), epochs=2, seeds=(0, 1),
                         methods=("multitune",), eta_grid=(0.0, 0.5, 1.0))
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    runs = plan.runs_to_plan(Study("tiny", toy_root, results=tmp_path, device="cpu"))
    sweep = runs[runs["part"] == "eta sweep"]
    assert sorted(c.eta for c in sweep["config"]) == [0.0, 0.0, 1.0, 1.0]  # eta 0.5 is the main run, planned once
    assert sweep["images_per_class"].isna().all() and runs["digest"].is_unique


def test_plan_of_a_selection_holds_only_its_runs_and_refuses_rows_the_profile_lacks(toy_root, tmp_path, monkeypatch,
                                                                                  capsys):
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2, 1), epochs=4, seeds=(0, 1),
                         eval_every=2, methods=("finetune", "multitune"), has_full_rows=False)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    study = Study("tiny", toy_root, results=tmp_path, device="cpu")
    df = plan.plan(study, "cpu", steps=1, batch=8, selection=study.selection(rows=["1"], methods=["finetune"]))
    assert len(df) == 2 and set(df["part"]) == {"selected"} and (df["images_per_class"] == 1).all()
    assert set(df["method"]) == {"finetune"} and (df["minutes"] > 0).all()
    assert capsys.readouterr().err.count("timing ") == 1  # the one method selected is timed
    monkeypatch.setattr(plan.bench, "ours", None)  # refused before any timing
    assert cli.main(["plan", "--profile", "tiny", "--rows", "5", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "row '5' is not one of the tiny profile's rows: 2, 1" in err and len(err.strip().splitlines()) == 1


def test_whole_split_validations_at_the_milestones_count_in_the_images_validated(toy_root, tmp_path, monkeypatch):
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2,), epochs=6, eval_every=3,
                         methods=("finetune",), has_full_rows=False, curve_val_images=5, whole_val="milestones",
                         settings={"finetune": {"milestones": (1, 2)}})
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    (row,) = plan.plan(Study("tiny", toy_root, results=tmp_path, device="cpu"), "cpu", steps=1, batch=8,
                       with_ablation=False).itertuples()
    assert row.validations == 4 and row.image_passes == 6 * 8 + 3 * 24 + 5  # 1, 2 and 6 whole, 3 the sample


def test_the_plan_holds_the_amf_sweep_and_the_contribution_criteria_beside_their_main_runs():
    study = Study("imagenet-cpu")  # configs only: nothing is timed or read beyond the store's finished flags
    sweeps = plan.method_sweeps(study)
    amf = sweeps[sweeps["method"] == "amf"]
    assert len(amf) == 3 and {c.amf_settings for c in amf["config"]} == {("A", "B", "finetune")}
    criteria = sweeps[sweeps["method"] == "contribution"]
    assert len(criteria) == 6 and {c.criterion for c in criteria["config"]} == {"magnitude", "taylor"}
    assert not set(sweeps["digest"]) & set(study.planned(methods=["amf", "contribution"])["digest"])


def test_work_inside_the_epochs_is_added_to_a_timed_speed_but_not_to_one_its_runs_measured():
    study = Study("imagenet-cpu")
    joint = study.config("selective_joint", "aircraft", 20, 0, source_sha256=study.source_sha256).resolved()
    search = study.config("contribution", "aircraft", 20, 0, source_sha256=study.source_sha256).resolved()
    timed, measured = {}, {"selective_joint": (30.0, 60.0), "contribution": (40.0, 60.0)}
    assert plan.beyond_epochs("selective_joint", joint, 2000, timed) == (15 * 2000, 2000)  # source half, one mining
    assert plan.beyond_epochs("selective_joint", joint, 2000, measured) == (0, 0)  # its epochs' seconds held them
    assert plan.beyond_epochs("contribution", search, 2000, measured) == plan.beyond_epochs(
        "contribution", search, 2000, timed) != (0, 0)  # a search's proxies are runs of their own: always added
    assert plan.beyond_epochs("finetune", search, 2000, timed) == (0, 0)
