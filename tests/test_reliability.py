import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from pytorch_lightning.callbacks import Callback

import seqkit
from seqkit.checkpoint import safe_load
from seqkit.io import atomic_path
from conftest import tiny_config


def last_weights(run_dir):
    return safe_load(run_dir / "ckpt" / "last.ckpt")["state_dict"]


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[3])
    import seqkit
    from conftest import tiny_config
    from pytorch_lightning.callbacks import Callback

    class KillAt(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 14:
                os.kill(os.getpid(), signal.SIGKILL)

    cfg = tiny_config(sys.argv[1], "lstm", out=sys.argv[2], steps=20)
    cfg.model.dropout = 0.2
    seqkit.train(cfg, callbacks=[KillAt()])
""")


def test_sigkill_then_resume_matches_uninterrupted_run(text_file, tmp_path):
    cfg = tiny_config(text_file, "lstm", out=tmp_path / "straight", steps=20)
    cfg.model.dropout = 0.2  # so the RNG state has to be restored too
    straight = seqkit.train(cfg)

    killed = tmp_path / "killed"
    result = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(text_file), str(killed),
                             os.path.dirname(__file__)], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert not (killed / "model.pt").exists()  # it never finished
    assert safe_load(killed / "ckpt" / "last.ckpt")["global_step"] == 12  # last validation before the kill

    resumed = seqkit.resume(killed)
    a, b = last_weights(straight), last_weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)


def test_existing_run_is_not_overwritten(trained_run):
    cfg = tiny_config(trained_run.parent / "corpus.txt", out=trained_run)
    with pytest.raises(ValueError, match="--resume"):
        seqkit.train(cfg)


class PoisonAt(Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == 8:
            with torch.no_grad():
                next(module.parameters()).fill_(float("nan"))


def test_nan_loss_stops_with_the_step_and_keeps_last_good_checkpoint(text_file, tmp_path):
    cfg = tiny_config(text_file, "elman", out=tmp_path / "run", steps=20)
    with pytest.raises(ValueError, match="loss is nan at step 8"):
        seqkit.train(cfg, callbacks=[PoisonAt()])
    good = safe_load(tmp_path / "run" / "ckpt" / "last.ckpt")
    assert good["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values())


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the crafted file's protocol
def test_crafted_pickle_is_refused(trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "evil"
    run.mkdir()
    for name in ("run.json", "tokenizer.json"):
        (run / name).write_bytes((trained_run / name).read_bytes())
    (run / "model.pt").write_bytes(pickle.dumps({"weights": Exploit()}))
    with pytest.raises(ValueError, match="refused to load"):
        seqkit.load(run)
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_other_format_version_is_refused(trained_run, tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    for name in ("tokenizer.json", "model.pt"):
        (run / name).write_bytes((trained_run / name).read_bytes())
    (run / "run.json").write_text((trained_run / "run.json").read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(ValueError, match="format version 99"):
        seqkit.load(run)


def test_atomic_write_keeps_previous_file_when_interrupted(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("previous good file")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half writ")
            raise KeyboardInterrupt
    assert target.read_text() == "previous good file"
    assert list(tmp_path.iterdir()) == [target]


def test_wandb_failure_never_stops_training(text_file, tmp_path, monkeypatch, capsys):
    import wandb

    def broken(*args, **kwargs):
        raise wandb.errors.CommError("network is down")

    monkeypatch.setattr(wandb, "init", broken)
    cfg = tiny_config(text_file, out=tmp_path / "run", steps=3)
    cfg.train.wandb = True
    run_dir = seqkit.train(cfg)
    assert (run_dir / "model.pt").is_file()
    assert "warning: W&B disabled for this run: CommError" in capsys.readouterr().err


def test_two_process_ddp_matches_one_process_on_the_same_global_batch(text_file, tmp_path):
    script = os.path.join(os.path.dirname(__file__), "ddp_script.py")
    runs = {}
    for mode in ("ddp", "single"):
        result = subprocess.run([sys.executable, script, str(text_file), str(tmp_path), mode],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[mode] = result.stdout
    assert runs["ddp"].count("finished ddp") == 2  # both ranks got to the end
    assert sorted(p.name for p in (tmp_path / "ddp" / "ckpt").iterdir()) == ["best.ckpt", "last.ckpt"]
    a, b = last_weights(tmp_path / "ddp"), last_weights(tmp_path / "single")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)


def test_resume_applies_a_new_peak_lr_and_names_what_it_cannot_change(text_file, tmp_path):
    import csv

    from seqkit.module import lr_factor

    cfg = tiny_config(text_file, out=tmp_path / "run", steps=6)
    run = seqkit.train(cfg)
    with pytest.raises(ValueError, match="cannot change when resuming: model.family lstm -> ar \\("):
        seqkit.resume(run, ["model.family=ar"])
    seqkit.resume(run, ["train.max_steps=20", "train.lr=0.01"])
    [log] = (run / "logs").glob("resumed-*/metrics.csv")
    with open(log, newline="") as f:
        logged = [(int(r["step"]), float(r["train/lr"])) for r in csv.DictReader(f) if r.get("train/lr")]
    assert logged and all(step >= 6 for step, _ in logged)
    for step, lr in logged:
        assert lr == pytest.approx(0.01 * lr_factor(step, 2, 20, 0.1))
    assert json.loads((run / "run.json").read_text())["config"]["train"]["lr"] == 0.01
