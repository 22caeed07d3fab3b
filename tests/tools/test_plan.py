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
    p = profiles.Profile("tiny", {"toy": None}, full_row=None, few_shot_rows=(2,), epochs=2, methods=("finetune",),
                         has_full_rows=False)
    monkeypatch.setitem(profiles.PROFILES, "tiny", p)
    study = Study("tiny", toy_root, results=tmp_path, device="cpu")
    study.run("finetune", "toy", 2, 0)
    train, evaluate = plan.measured(study)["finetune"]
    h = study.history()
    assert train == 8 * 2 / h["train_seconds"].sum() and evaluate > 0
    monkeypatch.setattr(plan.bench, "ours", None)  # a timing would fail: the store's figures are used
    assert plan.plan(study, "cpu", with_ablation=False)["done"].all()
