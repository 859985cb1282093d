"""Stateful training of frame models (train.stateful): the lanes' stream depends only on (seed, step);
lanes carry the state exactly as feeding whole songs does (the training loss over a pass is the eval NLL);
a resumed run matches a straight one; what cannot carry a state per lane is refused in one line."""
import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback

import seqkit
from conftest import tiny_config
from seqkit.checkpoint import safe_load
from seqkit.kinds.pianoroll import PianoRollKind
from seqkit.models import FAMILIES, ModelConfig, build_model
from seqkit.music.benchmark_file import write_benchmark_file
from seqkit.music.frame_data import LaneState, SongLanes

KIND = PianoRollKind()
CARRIED = [family for family in FAMILIES if family != "transformer"]


def random_songs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def frame_model(family, frame_head="bernoulli", seed=0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(family=family, vocab_size=88, frames=True, context=8, window=4, d_embed=16,
                                   d_hidden=32, n_layers=2, n_heads=2, frame_head=frame_head, nade_hidden=8))


@pytest.fixture
def song_file(tmp_path):
    songs = random_songs([9, 40, 17, 25, 33, 3, 16, 50])
    path = tmp_path / "songs.npz"
    write_benchmark_file(path, {"train": songs[:6], "val": songs[6:], "test": songs[6:]})
    return path


def batches(lanes: SongLanes, n: int):
    stream = iter(lanes)
    return [next(stream) for _ in range(n)]


def test_lanes_play_each_song_window_after_window_and_depend_only_on_seed_and_step():
    songs = random_songs([9, 40, 17, 3, 16])  # 9 and 17 frames: windows of 8 predictions end at the song's end
    lanes = SongLanes(songs, context=8, batch_size=3, seed=5)
    assert lanes.per_pass == 1 + 5 + 2 + 1 + 2
    played = batches(lanes, 2 * lanes.per_pass)
    for lane in range(3):  # each lane: every song once per pass, its windows in order, fresh at the start
        next_start = {}
        for step, (rolls, mask, fresh, numbers) in enumerate(played):
            song, k = lanes.position(lane, step)
            assert numbers[lane] == lane and bool(fresh[lane]) == (k == 0)
            assert next_start.get(song, 0) == k * 8
            next_start[song] = 0 if (k + 1) * 8 >= len(songs[song]) - 1 else (k + 1) * 8
            length = int(mask[lane].sum())
            assert torch.equal(rolls[lane, :length], torch.as_tensor(songs[song][k * 8:k * 8 + 9], dtype=torch.float32))
            assert not rolls[lane, length:].any()
        assert sorted(lanes.position(lane, s)[0] for s in range(lanes.per_pass) if lanes.position(lane, s)[1] == 0) \
            == [0, 1, 2, 3, 4]
    assert not all(torch.equal(played[0][0][0], played[0][0][i]) for i in (1, 2))  # lanes start on different songs
    resumed = batches(SongLanes(songs, 8, 3, seed=5, start_step=7), 3)
    split = [batches(SongLanes(songs, 8, 1, seed=5, start_step=7, rank=r, world_size=3), 3) for r in range(3)]
    for step in range(3):
        for i in range(4):
            assert torch.equal(resumed[step][i], played[7 + step][i])
            assert torch.equal(torch.cat([split[r][step][i] for r in range(3)]), played[7 + step][i])
    other_seed = batches(SongLanes(songs, 8, 3, seed=6), 1)
    assert not torch.equal(other_seed[0][0], played[0][0])


@pytest.mark.parametrize("family,frame_head", [(f, "bernoulli") for f in CARRIED] + [("lstm", "nade"), ("jordan", "nade")])
def test_stateful_loss_over_a_pass_is_the_eval_nll_of_whole_songs(family, frame_head):
    """At a learning rate of zero, stateful training's loss over one pass of the lanes is the NLL that
    `seqkit eval` gives the same songs: each lane carries its state exactly as feeding the whole song does."""
    songs = random_songs([9, 40, 17, 3, 16, 25])
    model = frame_model(family, frame_head).eval()
    with torch.no_grad():  # weights large enough that every output depends on what came before
        for p in model.parameters():
            p.normal_(std=0.3)
    lanes_data = SongLanes(songs, context=model.cfg.context, batch_size=3, seed=1)
    total, frames, lanes = 0.0, 0.0, None
    with torch.no_grad():
        for batch in batches(lanes_data, lanes_data.per_pass):
            loss, count, lanes = KIND.carried_loss(model, batch, lanes)
            total += loss.item() * count.item()
            frames += count.item()
    evaluated = KIND.evaluate(model, songs)
    assert frames == 3 * evaluated["frames"]  # every lane played every frame once
    assert total / frames == pytest.approx(evaluated["nll_per_frame"], rel=1e-5)


def test_lanes_state_is_detached_and_restored_lane_by_lane():
    songs = random_songs([30, 40, 50, 60])
    model = frame_model("lstm")
    played = batches(SongLanes(songs, 8, 4, seed=0), 2)
    _, _, lanes = KIND.carried_loss(model, played[0], None)
    assert all(not t.requires_grad for t in lanes.state)
    saved = lanes.saved(lambda t: t)  # one process: LightningModule.all_gather returns the tensor itself
    two, three = torch.tensor([2, 3]), torch.tensor([False, True])
    restored = LaneState.restored(saved, context=8).state_for(two, three)  # as process 1 of 2 would resume
    h, c = lanes.state
    assert torch.equal(restored[0][:, 0], h[:, 2]) and not restored[0][:, 1].any() and not restored[1][:, 1].any()
    assert torch.equal(restored[1][:, 0], c[:, 2])
    assert LaneState.restored(saved, context=16) is None  # a resumed run with another context starts afresh


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("stopped")


def stateful_config(source, family, out, steps=8):
    cfg = tiny_config(source, family, out=out, steps=steps, tokenizer="pianoroll")
    cfg.model.context, cfg.model.dropout, cfg.model.n_layers, cfg.train.batch_size = 8, 0.2, 2, 3
    cfg.train.stateful, cfg.train.val_every = True, 4
    return cfg


@pytest.mark.parametrize("family", ["lstm", "ffwd"])
def test_resumed_stateful_run_matches_a_straight_one(song_file, tmp_path, family):
    straight = seqkit.train(stateful_config(song_file, family, tmp_path / "straight"))
    with pytest.raises(RuntimeError, match="stopped"):
        seqkit.train(stateful_config(song_file, family, tmp_path / "stopped"), callbacks=[StopAt(6)])
    saved = safe_load(tmp_path / "stopped" / "ckpt" / "last.ckpt")
    assert saved["global_step"] == 4 and "lanes" in saved  # the lanes' states went into the checkpoint
    resumed = seqkit.resume(tmp_path / "stopped")
    a = safe_load(straight / "ckpt" / "last.ckpt")["state_dict"]
    b = safe_load(resumed / "ckpt" / "last.ckpt")["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)


def test_stateful_training_of_a_nade_head_learns(song_file, tmp_path):
    cfg = stateful_config(song_file, "lstm", tmp_path / "run", steps=6)
    cfg.model.frame_head = "nade"
    run = seqkit.train(cfg)
    trained = seqkit.load(run)
    assert trained.config.train.stateful
    assert trained.evaluate(str(song_file), split="test")["nll_per_frame"] < 88 * np.log(2)


def test_what_cannot_carry_a_state_per_lane_is_refused_in_one_line(song_file, text_file, tmp_path):
    with pytest.raises(ValueError, match="^train.stateful needs a model state kept per batch lane; the transformer"):
        seqkit.train(stateful_config(song_file, "transformer", tmp_path / "t"))
    assert not (tmp_path / "t").exists()
    cfg = tiny_config(text_file, "lstm", out=tmp_path / "text")
    cfg.train.stateful = True
    with pytest.raises(ValueError, match="^train.stateful applies to piano-roll frames, not to char tokens$"):
        seqkit.train(cfg)


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_the_cli_trains_frames_with_the_frame_defaults_under_the_users_settings(song_file, tmp_path, family):
    from typer.testing import CliRunner

    from seqkit.cli import app
    from seqkit.presets import preset_settings

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(song_file), "--tokenizer", "pianoroll", "--model", family,
                                      "--out", str(out), "--max-steps", "2", "--context", "8", "--batch-size", "2",
                                      "--accelerator", "cpu", "--set", "model.d_hidden=16", "--set", "model.n_heads=2",
                                      "--set", "train.progress=false", "--set", f"data.cache_dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    cfg = seqkit.load(out).config
    given = {"model.context": 8, "train.max_steps": 2, "train.batch_size": 2, "model.d_hidden": 16}
    defaults = preset_settings("frames", family)
    assert defaults["train.stateful"] == (family != "transformer")
    for key, value in {**defaults, **given}.items():
        section, _, name = key.partition(".")
        assert getattr(getattr(cfg, section), name) == value, key


def test_two_process_stateful_run_resumes_exactly(song_file, tmp_path):
    """Each process saves its lanes' states into the one checkpoint (gathered) and takes its own back."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "ddp_stateful_script.py"
    for mode in ("straight", "stopped", "resumed"):
        result = subprocess.run([sys.executable, str(script), str(song_file), str(tmp_path), mode],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count(f"finished {mode}") == 2, result.stdout  # both ranks got to the end
    saved = safe_load(tmp_path / "stopped" / "ckpt" / "last.ckpt")
    assert saved["lanes"]["lanes"].tolist() == [0, 1, 2, 3]  # both processes' lanes, in order
    a = safe_load(tmp_path / "straight" / "ckpt" / "last.ckpt")["state_dict"]
    b = safe_load(tmp_path / "stopped" / "ckpt" / "last.ckpt")["state_dict"]  # resumed into the same run
    assert safe_load(tmp_path / "stopped" / "ckpt" / "last.ckpt")["global_step"] == 8
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)
