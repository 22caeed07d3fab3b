"""AMF, parameter contribution and selective joint fine-tuning in the study: what trains first, and the tables read
from runs that have not trained yet."""
from multitune_lib.study import Study
from multitune_lib.study import amf
from multitune_lib.study import contribution as pc
from multitune_lib.study import selective_joint as sjs


def test_contribution_trains_the_20_per_class_rows_then_the_criteria_then_the_rest():
    q = pc.queue(Study("imagenet-cpu", results="unused"))
    assert q[:6] == [(d, 20, s, {}) for s in (0, 1, 2) for d in ("aircraft", "cifar100")]
    assert q[6:12] == [("aircraft", 20, s, {"criterion": c}) for c in ("magnitude", "taylor") for s in (0, 1, 2)]
    assert len(q) == 12 + 3 * 7 and len(set(map(str, q))) == len(q)  # every other row once per seed


def test_amf_trains_the_20_per_class_rows_then_the_rest_then_its_k3_sweep():
    q = amf.queue(Study("imagenet-cpu", results="unused"))
    assert q[:6] == [(d, 20, s, {}) for s in (0, 1, 2) for d in ("aircraft", "cifar100")]
    assert q[-3:] == [("aircraft", 20, s, {"amf_settings": amf.THREE}) for s in (0, 1, 2)]
    assert len(q) == 27 + 3 and len(set(map(str, q))) == len(q)


def test_selective_joint_trains_aircraft_20_first_then_every_row():
    q = sjs.queue(Study("imagenet-cpu", results="unused"))
    assert q[:3] == [("aircraft", 20, s) for s in (0, 1, 2)] and len(q) == 27 and len(set(q)) == 27


def test_without_runs_the_tables_are_empty_and_the_conclusions_say_so(tmp_path):
    from multitune_lib.study import conclusions
    study = Study("smoke", results=tmp_path, train=False)
    rec = pc.records(study)
    assert rec.empty and pc.cost(study, rec).empty and pc.searched(rec).empty and pc.candidates(study, rec).empty
    assert conclusions.contribution(pc.against(study), pc.cost(study, rec), pc.criteria(study)).startswith("No ")
    assert sjs.rounds(study).empty
    assert conclusions.selective_joint(sjs.against(study), sjs.rounds(study)).startswith("No ")


def test_the_cost_table_pairs_the_whole_dataset_row_with_fine_tuning_too(tmp_path, monkeypatch):
    import pandas as pd
    keys = {"dataset": ["aircraft"] * 2, "images_per_class": pd.array([None, 20], dtype="Int64"), "seed": [0, 0],
            "main": [True, True]}
    ft = pd.DataFrame(keys | {"method": "finetune", "train_minutes": [30.0, 10.0]})
    study = Study("imagenet-cpu", results=tmp_path, train=False)
    monkeypatch.setattr(study, "runs", lambda: ft)
    rec = pd.DataFrame(keys | {"dataset_label": "Aircraft", "final_pct": [40.0, 30.0], "trained_share": [0.5, 0.5],
                               "search_minutes": [45.0, 15.0], "train_minutes_final": [30.0, 10.0],
                               "total_minutes": [75.0, 25.0]})
    cost = pc.cost(study, rec).set_index("images_per_class")
    assert cost["times_finetune"].tolist() == [2.5, 2.5]  # the whole row (missing) found its fine-tuning run


def test_a_criterion_is_compared_only_where_the_signed_values_runs_are_in_too():
    import pandas as pd
    from multitune_lib.study import conclusions
    against = pd.DataFrame({"contrast": ["contribution - finetune"], "diff_pct": [1.0], "ci95_pct": [0.5],
                            "p_holm": [0.01]})
    criteria = pd.DataFrame({"data": "Aircraft", "images_per_class": 20, "criterion": ["signed_value", "taylor"],
                             "seeds": [0, 3], "vs_signed_value_pct": [float("nan")] * 2,
                             "vs_signed_value_ci95": [float("nan")] * 2})
    said = conclusions.contribution(against, pd.DataFrame(), criteria)
    assert "nan" not in said and "taylor" not in said
    said = conclusions.contribution(against, pd.DataFrame(), criteria.assign(vs_signed_value_pct=[0.0, -1.25],
                                                                             vs_signed_value_ci95=[0.0, 0.5]))
    assert "ranking by taylor instead of the signed value moves it by -1.2 ± 0.5 points" in said


def test_the_policy_sentence_gives_the_range_over_runs_and_counts_those_leaning_on_one_network():
    import pandas as pd
    from multitune_lib.study import conclusions
    rows = [(d, e, net, w, sd) for d, a, sd in (("x", 0.9, 0.05), ("y", 0.5, 0.3)) for e in (1, 2)
            for net, w in (("0", a if e == 2 else 0.5), ("1", 1 - a if e == 2 else 0.5))]
    policy = pd.DataFrame(rows, columns=["digest", "epoch", "network", "weight", "weight_sd"])
    said = conclusions.policy_said(policy)
    assert "mean weight of 0.50 to 0.90 over the 2 runs" in said and "deviation of 0.05 to 0.30" in said
    assert "in 1 of them one network takes 80%" in said
    flipped = policy.assign(network=policy["network"].map({"0": "1", "1": "0"}))  # B leaning counts too
    assert "in 1 of them" in conclusions.policy_said(flipped)


def test_the_top_images_come_from_the_run_whose_weights_vary_most_at_its_last_epoch():
    import pandas as pd
    rows = [("x", "Aircraft", 20, 0, 1, "0", 0.9), ("x", "Aircraft", 20, 0, 2, "0", 0.1),
            ("y", "Aircraft", 20, 1, 1, "0", 0.5), ("y", "Aircraft", 20, 1, 2, "0", 0.3),
            ("z", "Aircraft", None, 2, 2, "0", 0.8), ("w", "CIFAR100", 20, 2, 2, "0", 0.8)]
    long = pd.DataFrame(rows, columns=["digest", "dataset_label", "images_per_class", "seed", "epoch", "network",
                                       "weight_sd"]).astype({"images_per_class": "Int64"})
    assert amf.most_split_seed(long, "Aircraft", 20, default=7) == 1  # x varies most, but not at its last epoch
    assert amf.most_split_seed(long, "Aircraft", None, default=7) == 2
    assert amf.most_split_seed(long, "Aircraft", 15, default=7) == 7


def test_the_policy_table_keeps_the_whole_dataset_row(tmp_path, monkeypatch):
    import pandas as pd
    h = pd.DataFrame({"method": "amf", "main": True, "val_acc": [0.4, 0.3], "digest": ["whole", "twenty"],
                      "dataset_label": "Aircraft", "images_per_class": pd.array([None, 20], dtype="Int64"),
                      "seed": 0, "epoch": 15, "weight.0": [0.9, 0.6], "weight.1": [0.1, 0.4],
                      "weight_sd.0": [0.05, 0.3], "weight_sd.1": [0.05, 0.3], "share.0": [1.0, 0.7],
                      "share.1": [0.0, 0.3]})
    study = Study("imagenet-cpu", results=tmp_path, train=False)
    monkeypatch.setattr(study, "history", lambda: h)
    long = amf.policy(study).set_index(["digest", "network"])
    assert len(long) == 4 and long.loc[("whole", "0"), "weight"] == 0.9 and long.loc[("twenty", "1"), "share"] == 0.3


def test_the_sweep_policy_reads_each_three_network_runs_last_validated_epoch(tmp_path, monkeypatch):
    import pandas as pd
    from multitune_lib.study import conclusions
    study = Study("imagenet-cpu", results=tmp_path, train=False)
    dataset, n = amf.sweep_row(study)
    digests = {study.config("amf", dataset, n, seed, source_sha256=study.source_sha256,
                            amf_settings=amf.THREE).digest(): seed for seed in (0, 2)}  # seed 1 not trained
    for digest, seed in digests.items():
        (tmp_path / digest).mkdir()
        weights = {f"{m}.{k}": [w, 0.0] for k, w in enumerate((0.5 - seed / 10, 0.3, 0.2 + seed / 10))
                   for m in ("weight", "weight_sd", "share")}
        # epoch 15 was not validated (its record is empty): epoch 14 is the last the policy was read at
        pd.DataFrame({"epoch": [14, 15], "val_acc": [0.2, None]} | weights).to_csv(tmp_path / digest / "history.csv",
                                                                                  index=False)
    monkeypatch.setattr(study.store, "finished", lambda d: {} if d in digests else None)
    monkeypatch.setattr(study.store, "run_dir", lambda d: tmp_path / d)
    third = amf.sweep_policy(study).set_index(["seed", "network"])
    assert sorted(third.index) == [(s, net) for s in (0, 2) for net in sorted(amf.THREE)]
    assert third.loc[(2, "A"), "weight"] == 0.3 and third.loc[(0, "finetune"), "share"] == 0.2
    said = conclusions.three_said(third.reset_index())
    assert "over the 2 seeds, is setting A 0.30 to 0.50, setting B 0.30 to 0.30, plain fine-tuning 0.20 to 0.40" in said


def test_the_sweep_pairs_three_networks_with_two_multitune_and_fine_tuning_by_seed(tmp_path, monkeypatch):
    from multitune_lib.study import conclusions
    study = Study("imagenet-cpu", results=tmp_path, train=False)
    dataset, n = amf.sweep_row(study)
    acc = {("amf", amf.THREE, 0): 0.40, ("amf", amf.THREE, 1): 0.38, ("amf", None, 0): 0.36, ("amf", None, 1): 0.35,
           ("multitune", None, 0): 0.35, ("multitune", None, 1): 0.36, ("finetune", None, 0): 0.34}
    runs = {study.config(m, dataset, n, seed, source_sha256=study.source_sha256,
                         **({"amf_settings": k} if k else {})).digest(): {"metrics": {"final_val_acc": a}}
            for (m, k, seed), a in acc.items()}
    monkeypatch.setattr(study.store, "finished", runs.get)
    sweep = amf.sweep(study).set_index("contrast")
    assert list(sweep.index) == ["AMF (K = 3) - AMF (K = 2)", "AMF (K = 3) - MultiTune", "AMF (K = 3) - Fine-tuning"]
    assert sweep["seeds"].tolist() == [2, 2, 1]  # fine-tuning's seed 1 is missing: one pair
    assert round(sweep.loc["AMF (K = 3) - AMF (K = 2)", "diff_pct"], 6) == 3.5
    assert round(sweep.loc["AMF (K = 3) - Fine-tuning", "diff_pct"], 6) == 6.0
    said = conclusions.third_network_said(sweep.reset_index())
    assert said.startswith("a third network (plain fine-tuning) moves AMF by +3.5 ± ") and "over 2 seeds; AMF (K = 3) - MultiTune: +" in said
    assert said.endswith(", AMF (K = 3) - Fine-tuning: +6.0 points")  # one pair: no interval


def test_the_criteria_table_pairs_each_criterion_with_the_released_rule_by_seed(tmp_path, monkeypatch):
    study = Study("imagenet-cpu", results=tmp_path, train=False)
    dataset, n = pc.ablation_row(study)
    acc = {("signed_value", 0): 0.30, ("signed_value", 1): 0.32, ("signed_value", 2): 0.31,
           ("magnitude", 0): 0.33, ("magnitude", 1): 0.34, ("taylor", 0): 0.29}  # the rest not trained
    runs = {study.config("contribution", dataset, n, seed, source_sha256=study.source_sha256,
                         **({} if c == "signed_value" else {"criterion": c})).digest():
            {"metrics": {"final_val_acc": a}} for (c, seed), a in acc.items()}
    monkeypatch.setattr(study.store, "finished", runs.get)
    crit = pc.criteria(study).set_index("criterion")
    assert crit["seeds"].to_dict() == {"signed_value": 3, "magnitude": 2, "taylor": 1}
    assert round(crit.loc["signed_value", "acc_pct"], 6) == 31.0
    assert crit.loc["signed_value", "vs_signed_value_pct"] == 0
    assert round(crit.loc["magnitude", "vs_signed_value_pct"], 6) == 2.5  # (33 - 30 + 34 - 32) / 2, seed 2 unpaired
    assert round(crit.loc["taylor", "vs_signed_value_pct"], 6) == -1.0
