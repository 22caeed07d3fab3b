"""15 against 110 epochs: two profiles' runs of the same rows, paired by seed, without training."""
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from multitune_lib.study import Study, conclusions, profiles, schedules
from multitune_lib.study import study as study_module

METHODS = schedules.METHODS


@pytest.fixture
def twins(monkeypatch, tmp_path):
    """A 15-epoch and a 110-epoch profile of one toy dataset at 5 images per class, three seeds, in place of
    imagenet-cpu and imagenet."""
    common = dict(datasets={"toy": None}, full_row=None, few_shot_rows=(5,), seeds=(0, 1, 2), methods=METHODS,
                  has_full_rows=False)
    monkeypatch.setitem(profiles.PROFILES, "short", profiles.Profile(
        "short", epochs=15, settings={m: {"milestones": (8, 12)} for m in METHODS}, **common))
    monkeypatch.setitem(profiles.PROFILES, "long", profiles.Profile("long", epochs=110, **common))
    monkeypatch.setattr(schedules, "SHORT", "short")
    monkeypatch.setattr(schedules, "LONG", "long")
    monkeypatch.setattr(study_module.paths, "results_dir", lambda name: tmp_path / name)
    return Study("short")


def finish_side(study, finish, offset: float = 0.0) -> None:
    """Every compared run of `study`: method i, seed s at 10 + i + 0.1 s % (+ offset + 0.2 s points at 110)."""
    for i, method in enumerate(METHODS):
        for seed in study.seeds:
            acc = 0.10 + 0.01 * i + 0.001 * seed + (offset + 0.002 * seed if offset else 0.0)
            last = study.profile.epochs
            finish(study, study.config(method, "toy", 5, seed), acc=acc, history=[
                {"epoch": 5, "val_acc": acc - 0.02, "val_images": 2}, {"epoch": last, "val_acc": acc, "val_images": 6}])


def test_a_profile_outside_the_pair_has_nothing_to_compare_and_says_so(tmp_path):
    study = Study("smoke", results=tmp_path, train=False)
    assert schedules.pair(study) is None and schedules.run(study).empty
    assert schedules.table(None).empty and schedules.differences(None).empty
    fig, caption = schedules.figure(None)
    assert fig is None and "No twin" in caption
    assert "has no twin under another schedule" in schedules.setup(study)
    assert conclusions.schedules(schedules.table(None), schedules.differences(None)).startswith("No pair")


def test_before_the_long_runs_the_short_side_stands_alone_and_the_long_one_reads_not_yet_trained(twins, finish):
    short, long = schedules.pair(twins)
    assert short is twins and long.profile.name == "long" and not long.train
    finish_side(short, finish)
    t = schedules.table((short, long))
    assert len(t) == 2 * len(METHODS) and t.loc[t["epochs"] == 15, "seeds"].eq(3).all()
    assert t.loc[t["epochs"] == 110, "seeds"].eq(0).all() and t["change_seeds"].eq(0).all()
    assert (schedules.printed(t).loc[t["epochs"] == 110, "final %"] == schedules.NOT_YET).all()
    d = schedules.differences((short, long))
    assert set(d["epochs"]) == {15} and set(d["contrast"]) == {"MultiTune - SpotTune", "MultiTune - L2-SP",
                                                               "SpotTune - Fine-tuning", "L2-SP - Fine-tuning"}
    wide = schedules.printed_differences(d, (short, long))
    assert wide["110 epochs"].eq(schedules.NOT_YET).all() and wide["15 epochs"].str.endswith("better)").all()
    fig, caption = schedules.figure((short, long))
    assert len(fig.axes) == len(METHODS) and "110-epoch runs are not yet trained" in caption
    plt.close(fig)
    assert "The 110-epoch runs are not trained yet" in conclusions.schedules(t, d)


def test_both_schedules_pair_by_seed_and_are_written(twins, finish, tmp_path):
    short, long = schedules.pair(twins)
    finish_side(short, finish)
    finish_side(long, finish, offset=0.05)
    t = schedules.table((short, long))
    later = t[t["epochs"] == 110]
    assert later["change_pct"].tolist() == pytest.approx([5.2] * len(METHODS)) and later["change_seeds"].eq(3).all()
    assert later["best_pct"].tolist() == pytest.approx(later["final_pct"].tolist())
    d = schedules.differences((short, long))
    gap = d[(d["contrast"] == "MultiTune - SpotTune") & (d["measure"] == "final")].set_index("epochs")
    assert gap["diff_pct"].tolist() == pytest.approx([1.0, 1.0]) and (gap["verdict"] == "MultiTune better").all()
    assert not schedules.printed_differences(d, (short, long)).isin([schedules.NOT_YET]).any().any()
    fig, caption = schedules.figure((short, long))
    wrote = schedules.write(t, d, fig, caption, (short, long), tmp_path / "figures")
    plt.close(fig)
    assert [p.name for p in wrote] == ["schedules.csv", "schedules_differences.csv", "schedules.md", "schedules.png",
                                       "schedules.pdf"] and all(p.is_file() for p in wrote)
    assert len(pd.read_csv(wrote[0])) == 2 * len(METHODS) and "| MultiTune - SpotTune |" in wrote[2].read_text()
    said = conclusions.schedules(t, d)
    assert "the same verdict under both" in said and "moves by Fine-tuning +5.2" in said


def test_a_long_side_trained_in_part_is_counted_by_its_own_seeds(twins, finish):
    short, long = schedules.pair(twins)
    finish_side(short, finish)
    finish(long, long.config("finetune", "toy", 5, 0), acc=0.2, history=[
        {"epoch": 5, "val_acc": 0.15, "val_images": 2}, {"epoch": 110, "val_acc": 0.2, "val_images": 6}])
    t = schedules.table((short, long)).set_index(["method", "epochs"])
    assert t.loc[("finetune", 110), "seeds"] == 1 and t.loc[("finetune", 110), "change_seeds"] == 1
    fig, caption = schedules.figure((short, long))
    plt.close(fig)
    assert "mean over 3 seeds at 15 epochs and 1 seed at 110 epochs" in caption
    # the short side's notebook says how much of its twin is in, and in which precision
    assert "its store holds 1 of the 15 runs compared (float32: 1 run)." in schedules.setup(short)
    finish(long, long.config("spottune", "toy", 5, 0), acc=0.1,
           history=[{"epoch": 110, "val_acc": 0.1, "val_images": 6}])
    said = conclusions.schedules(schedules.table((short, long)), schedules.differences((short, long)))
    assert "-10.0 points at 110 epochs (one seed: no interval)." in said and "verdict" not in said  # none to change


def test_only_the_long_side_trains_what_it_lacks(twins, monkeypatch):
    trained = []
    monkeypatch.setattr(study_module, "fit", lambda cfg, **kw: trained.append(cfg) or {"config": cfg.to_dict(),
                                                                                        "metrics": {}})
    short, long = schedules.pair(twins)
    schedules.run(short)
    assert trained == [] and "not in the store and not trained" in short.tally()
    long.train = True
    schedules.run(long)
    assert len(trained) == 3 * len(METHODS) and {c.epochs for c in trained} == {110}
