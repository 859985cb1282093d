import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import seqkit
from seqkit.config import RunConfig, apply_dict, apply_overrides
from seqkit.data import RandomWindows
from seqkit.kinds import load_corpus
from seqkit.generate import check_sampling, sample_next
from seqkit.models import FAMILIES
from seqkit.module import lr_factor
from conftest import tiny_config


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_trains_saves_loads_and_samples(family, text_file, tmp_path):
    run_dir = seqkit.train(tiny_config(text_file, family, out=tmp_path / family, steps=30))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["summary"]["steps"] == 30
    losses = [float(r.split(",")[3]) for r in (run_dir / "logs" / "metrics.csv").read_text().splitlines()[1:]
              if r.split(",")[3]]
    assert losses[-1] < losses[0], "training did not lower the loss"
    trained = seqkit.load(run_dir)
    [text] = trained.generate("it was", max_new_tokens=20, seed=0)
    assert text.startswith("it was") and len(text) == len("it was") + 20


def test_save_then_load_in_fresh_process_gives_identical_logits(trained_run):
    x = torch.tensor([seqkit.load(trained_run).tokenizer.encode("it was the age")])
    here = seqkit.load(trained_run).model(x)[0]
    code = ("import sys, torch, seqkit; m = seqkit.load(sys.argv[1]); "
            "x = torch.tensor([m.tokenizer.encode('it was the age')]); "
            "torch.save(m.model(x)[0].detach(), sys.argv[2])")
    out = trained_run / "logits.pt"
    subprocess.run([sys.executable, "-c", code, str(trained_run), str(out)], check=True)
    assert torch.equal(here.detach(), torch.load(out, weights_only=True))


def test_run_directory_and_metrics(trained_run):
    for name in ("run.json", "tokenizer.json", "model.pt", "ckpt/last.ckpt", "ckpt/best.ckpt", "logs/metrics.csv"):
        assert (trained_run / name).is_file(), name
    header = (trained_run / "logs" / "metrics.csv").read_text().splitlines()[0]
    for metric in ("train/loss", "train/lr", "train/grad_norm", "val/loss", "val/ppl", "val/bits_per_token",
                   "val/bits_per_char"):
        assert metric in header
    metrics = seqkit.load(trained_run).evaluate(str(trained_run.parent / "corpus.txt"))
    assert metrics["ppl"] == pytest.approx(np.exp(metrics["loss"]), rel=1e-5)
    assert metrics["bits_per_char"] == pytest.approx(metrics["bits_per_token"])  # char tokenizer


def test_generation_is_seeded_and_batched(trained_run):
    model = seqkit.load(trained_run)
    a = model.generate("it", max_new_tokens=30, seed=3, num_samples=4)
    assert a == model.generate("it", max_new_tokens=30, seed=3, num_samples=4)
    assert len(set(a)) > 1
    greedy = model.generate("it", max_new_tokens=30, temperature=0, num_samples=2)
    assert greedy[0] == greedy[1]


def test_sample_next_filters():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]]).repeat(500, 1)
    assert set(sample_next(logits, top_k=2).tolist()) == {2, 3}
    # probabilities ≈ .03 .09 .24 .64: top-p 0.5 keeps only the top token, 0.7 the top two
    assert set(sample_next(logits, top_p=0.5).tolist()) == {3}
    assert set(sample_next(logits, top_p=0.7).tolist()) == {2, 3}
    assert sample_next(logits[:1], temperature=0).item() == 3


@pytest.mark.parametrize("bad", [dict(max_new_tokens=0), dict(temperature=-1), dict(top_p=0), dict(top_p=1.5),
                                 dict(top_k=0), dict(num_samples=0)])
def test_invalid_sampling_settings(bad):
    settings = dict(max_new_tokens=5, temperature=1.0, top_k=None, top_p=None, num_samples=1) | bad
    with pytest.raises(ValueError):
        check_sampling(**settings)


def test_token_cache_is_uint16_memmap_and_reused(text_file, tmp_path):
    cfg = tiny_config(text_file, cache_dir=tmp_path / "cache")
    corpus = load_corpus(cfg.data)
    assert isinstance(corpus.train, np.memmap) and corpus.train.dtype == np.uint16
    assert len(corpus.val) == pytest.approx(0.1 * (len(corpus.train) + len(corpus.val)), abs=1)
    bins = list((tmp_path / "cache").glob("tokens-*.bin"))
    mtime = bins[0].stat().st_mtime_ns
    load_corpus(cfg.data)
    assert [b.stat().st_mtime_ns for b in (tmp_path / "cache").glob("tokens-*.bin")] == [mtime]


def test_random_windows_depend_only_on_step():
    tokens = np.arange(1000, dtype=np.uint16)
    first = iter(RandomWindows(tokens, 8, 4, seed=1))
    batches = [next(first) for _ in range(3)]
    resumed = next(iter(RandomWindows(tokens, 8, 4, seed=1, start_step=2)))
    assert torch.equal(batches[2], resumed)
    assert torch.equal(batches[0][:, 1:], batches[0][:, :-1] + 1)  # contiguous windows


def test_config_yaml_and_overrides():
    cfg = RunConfig()
    apply_dict(cfg, {"model": {"family": "transformer", "d_embed": 32}, "train": {"lr": "1e-3"}})
    apply_overrides(cfg, ["model.dropout=0.1", "train.nesterov=true", "train.betas=0.9,0.99"])
    assert (cfg.model.family, cfg.model.d_embed, cfg.train.lr) == ("transformer", 32, 1e-3)
    assert cfg.model.dropout == 0.1 and cfg.train.nesterov is True and cfg.train.betas == (0.9, 0.99)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config key"):
        apply_overrides(cfg, ["model.width=3"])
    with pytest.raises(ValueError, match="expected int"):
        apply_overrides(cfg, ["model.d_embed=big"])


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, warmup=10, total=100, min_ratio=0.1) for s in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optimizers_and_penalties(optimizer, text_file, tmp_path):
    cfg = tiny_config(text_file, "ffwd", out=tmp_path / "run", steps=4)
    cfg.train.optimizer, cfg.train.nesterov, cfg.train.weight_decay, cfg.train.l1 = optimizer, True, 0.1, 1e-4
    cfg.model.dropout = 0.1
    assert json.loads((seqkit.train(cfg) / "run.json").read_text())["summary"]["steps"] == 4


def test_wandb_offline_run_writes_files(text_file, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login: must go offline by itself
    cfg = tiny_config(text_file, out=tmp_path / "run", steps=3)
    cfg.train.wandb = True
    run_dir = seqkit.train(cfg)
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline and any(offline[0].rglob("*.wandb"))


def test_parallel_tokenisation_equals_sequential(text_file, tmp_path, monkeypatch):
    import seqkit.data as data

    monkeypatch.setattr(data, "_BLOCK", 200)  # many blocks: the worker pool path runs
    cfg = tiny_config(text_file, tokenizer="bpe", cache_dir=tmp_path / "a")
    cfg.data.vocab_size = 300
    parallel = load_corpus(cfg.data)
    tokenizer = parallel.tokenizer
    blocks = list(data.text_blocks(text_file))
    assert len(blocks) > 4
    sequential = np.concatenate([ids for _, ids in data._encode_blocks(tokenizer, blocks, np.uint16, parallel=False)])
    assert np.array_equal(np.concatenate([parallel.train, parallel.val]), sequential)
