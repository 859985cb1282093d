import csv

import pytest

from seqkit.compare import NO_STEP_LIMIT, compare, size_to, small_config
from seqkit.doctor import FAIL, PASS, WARN, doctor, gradient_norms, vanishing_check
from seqkit.models import FAMILIES, build_model, count_parameters

@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run no faster on more threads, and one thread is immune to a busy machine's other work."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = dict(context=16, batch_size=8, d_hidden=32, d_embed=16, val_batches=2)


@pytest.fixture
def prose(tmp_path):
    """Varied real text (no repeated lines, unlike conftest's TEXT): a sound set-up's data."""
    from pydoc_data.topics import topics

    path = tmp_path / "prose.txt"
    path.write_text("\n\n".join(topics[k].strip() for k in sorted(topics)[:12]))
    return path


def test_compare_trains_each_family_and_writes_the_leaderboard(text_file, tmp_path):
    out, lines = tmp_path / "cmp", []
    rows = compare(str(text_file), models="ar,elman,transformer", max_steps=12, out=out, echo=lines.append,
                   val_every=4, cache_dir=str(tmp_path / "cache"), **TINY)
    assert sorted(r["family"] for r in rows) == ["ar", "elman", "transformer"]
    assert [r["best_val_loss"] for r in rows] == sorted(r["best_val_loss"] for r in rows)  # best first
    with open(out / "compare.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["family"] for r in table] == [r["family"] for r in rows]
    for row in table:
        assert int(row["steps"]) == 12 and int(row["parameters"]) > 0 and float(row["sample_tokens_per_s"]) > 0
        assert row["bits_per"] == "char"
    md = (out / "compare.md").read_text().splitlines()
    assert len(md) == 2 + 3 and "bits/char" in md[0] and "sample tok/s" in md[0]
    assert "\n".join(md) in "\n".join(lines)  # the printed leaderboard
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "elman" / "val_times.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [4, 8, 12]


def test_compare_refuses_unknown_families_and_existing_runs(text_file, tmp_path):
    with pytest.raises(ValueError, match="unknown model family gru"):
        compare(str(text_file), models="lstm,gru", out=tmp_path / "cmp")
    (tmp_path / "cmp" / "lstm").mkdir(parents=True)
    (tmp_path / "cmp" / "lstm" / "run.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds a run"):
        compare(str(text_file), models="lstm", out=tmp_path / "cmp")


@pytest.mark.parametrize("target", [3_000, 20_000, 300_000])
def test_params_sizing_lands_near_the_target_for_every_family(target):
    for family in FAMILIES:
        cfg = small_config("x.txt", family, "char")
        size_to(cfg, target, vocab_size=40)
        cfg.model.vocab_size = 40
        assert abs(count_parameters(build_model(cfg.model)) / target - 1) < 0.3, (family, cfg.model)


def test_compare_with_params_and_time_budget(text_file, tmp_path):
    rows = compare(str(text_file), models="ar,lstm", time_budget=1.0, params=20_000, out=tmp_path / "cmp",
                   echo=lambda *_: None, cache_dir=str(tmp_path / "cache"), **TINY)
    for row in rows:
        assert abs(row["parameters"] / 20_000 - 1) < 0.3
        assert 0 < row["steps"] < NO_STEP_LIMIT and row["wall_s"] < 30


def test_doctor_fails_a_broken_learning_rate(text_file, tmp_path):
    checks = doctor(str(text_file), model="lstm", lr=10, steps=60, out=tmp_path / "doc", echo=lambda *_: None,
                    cache_dir=str(tmp_path / "cache"), **TINY)
    failed = {c.name for c in checks if c.status == FAIL}
    assert failed & {"overfit one batch", "short run", "exploding gradients"}, checks


def test_doctor_passes_a_sound_setup(prose, tmp_path):
    lines = []
    checks = doctor(str(prose), model="lstm", steps=120, out=tmp_path / "doc", echo=lines.append,
                    cache_dir=str(tmp_path / "cache"), context=32, val_batches=2)
    assert not [c for c in checks if c.status == FAIL], checks
    assert {c.name for c in checks} >= {"loss at init", "overfit one batch", "vanishing gradients",
                                        "exploding gradients", "train/val overlap", "token frequency",
                                        "unseen val tokens", "short run"}
    assert all(c.status in (PASS, WARN) for c in checks)
    assert any(line.startswith("PASS  loss at init") for line in lines)
    assert "| overfit one batch" in (tmp_path / "doc" / "doctor.md").read_text()
    assert (tmp_path / "doc" / "doctor.png").read_bytes()[:4] == b"\x89PNG"


def test_doctor_sees_repeated_text_in_train_and_val(text_file, tmp_path):
    from seqkit.doctor import data_checks
    from seqkit.kinds import load_corpus

    corpus = load_corpus(small_config(str(text_file), "lstm", cache_dir=str(tmp_path / "cache")).data)
    overlap = next(c for c in data_checks(corpus, 16) if c.name == "train/val overlap")
    assert overlap.status == WARN and overlap.value > 0.9


@pytest.mark.parametrize("family, options, status", [
    ("elman", dict(n_layers=6, activation="sigmoid"), WARN),
    ("lstm", dict(n_layers=2), PASS),
])
def test_vanishing_gradients_warn_for_deep_sigmoid_elman_not_lstm(text_file, tmp_path, family, options, status):
    from seqkit.data import RandomWindows
    from seqkit.kinds import load_corpus

    cfg = small_config(str(text_file), family, cache_dir=str(tmp_path / "cache"), **{**TINY, **options})
    corpus = load_corpus(cfg.data)
    cfg.model.vocab_size = corpus.tokenizer.vocab_size
    names, norms = gradient_norms(cfg, corpus.tokenizer, iter(RandomWindows(corpus.train, 16, 8, 0)), steps=5)
    assert norms.shape == (len(names), 5) and names[-1] == "head.weight"
    assert vanishing_check(names, norms).status == status
