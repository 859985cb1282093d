"""The data-kind registry: every kind saves, loads and round-trips; runs written before kinds had format
versions still load; metrics count what was scored; the demo's baselines; a transformer past its context."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import seqkit
from conftest import TEXT, tiny_config
from seqkit.api import TrainedModel
from seqkit.data import Windows
from seqkit.generate import feed
from seqkit.kinds import KINDS, kind_from_dict, load_corpus
from seqkit.models import ModelConfig, build_model
from seqkit.music.demo import score_pieces
from seqkit.music.notes import Note, NoteList

OLD_RUNS = Path(__file__).parent / "data" / "runs-v0"  # written by seqkit before data kinds (commit 43eaf5e)
CORPUS = TEXT + "Ünïcödé ✓ 日本語 tabs\tand  double  spaces\r\n"
NOTES = NoteList([Note(60, 0, 1), Note(64, 0, 0.5), Note(67, 1 / 3, 2 / 3), Note(72, 2.5, 1.5)], [(0, 4, 4)])


def make_kind(name):
    cls = KINDS[name]
    return cls.fit([CORPUS], 300) if hasattr(cls, "fit") else cls()


def round_trips(kind) -> bool:
    if hasattr(kind, "decode_notes"):  # MIDI events
        return kind.decode_notes(kind.encode_notes(NOTES)) == list(NOTES)
    if hasattr(kind, "roll_to_notes"):  # piano-roll frames
        roll = kind.notes_to_roll([Note(60, 0, 1), Note(64, 0.5, 2)])
        return np.array_equal(kind.notes_to_roll(kind.roll_to_notes(roll)), roll) and roll.sum() == 2 + 4
    return kind.decode(kind.encode(CORPUS)) == CORPUS


@pytest.mark.parametrize("name", list(KINDS))
def test_every_registered_kind_saves_loads_and_round_trips(name):
    kind = make_kind(name)
    saved = json.loads(json.dumps(kind.to_dict()))
    assert saved["kind"] == name and saved["format_version"] == kind.format_version
    again = kind_from_dict(saved)
    assert type(again) is type(kind) and again == kind and again.vocab_size == kind.vocab_size
    assert round_trips(kind) and round_trips(again)


def test_a_newer_tokenizer_format_is_refused_in_one_line():
    saved = {**make_kind("midi").to_dict(), "format_version": 99}
    with pytest.raises(ValueError, match="format version 99, but this seqkit reads version 1"):
        kind_from_dict(saved)
    with pytest.raises(ValueError, match="unknown tokenizer kind 'wordpiece'"):
        kind_from_dict({"kind": "wordpiece"})


@pytest.mark.parametrize("name", ["char", "bpe", "midi", "roll"])
def test_runs_written_before_data_kinds_still_load_and_work(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(OLD_RUNS / name, run)
    assert "format_version" not in json.loads((run / "tokenizer.json").read_text())
    trained = seqkit.load(run)
    if trained.tokenizer.frames:
        songs = [(np.random.default_rng(i).random((30, 88)) < 0.05).astype(np.uint8) for i in range(3)]
        metrics = trained.tokenizer.evaluate(trained.model, songs)
        assert metrics["frames"] == 3 * 29 and math.isfinite(metrics["nll_per_frame"])
    elif hasattr(trained.tokenizer, "bos_id"):
        [ids] = trained.generate_ids(None, max_new_tokens=20, seed=0)
        assert ids[0] == trained.tokenizer.bos_id and len(ids) == 21
    else:
        (tmp_path / "text.txt").write_text(TEXT)
        metrics = trained.evaluate(str(tmp_path / "text.txt"))
        assert metrics["bits_per_char"] > 0 and trained.generate("it was", max_new_tokens=5, seed=0)[0].startswith("it was")


# --- metrics count exactly what was scored ---------------------------------------------------------

def varied_text(n_lines=400):
    rng = np.random.default_rng(0)
    words = TEXT.split() + ["wisdom", "foolishness", "Ünïcödé", "日本語", "epoch", "belief"]
    return "".join(" ".join(rng.choice(words, 8)) + "\n" for _ in range(n_lines))


def test_bits_per_char_of_a_subword_run_counts_the_characters_scored(tmp_path):
    (tmp_path / "text.txt").write_text(varied_text())
    cfg = tiny_config(tmp_path / "text.txt", out=tmp_path / "run", steps=6, tokenizer="bpe")
    cfg.data.vocab_size = 300
    trained = seqkit.load(seqkit.train(cfg))
    metrics = trained.evaluate(str(tmp_path / "text.txt"), split="val")
    val = load_corpus(trained.config.data, trained.tokenizer).val
    kind, context = trained.tokenizer, trained.model.cfg.context
    scored = Windows(val, context)
    chars = sum(len(kind.decode(val[s + 1:s + context + 1])) for s in scored.starts)
    assert metrics["tokens"] == len(scored) * context
    assert metrics["bits_per_char"] == pytest.approx(metrics["bits_per_token"] * metrics["tokens"] / chars, rel=1e-6)
    whole_split = metrics["bits_per_token"] * len(val) / len(kind.decode(val))
    assert metrics["bits_per_char"] == pytest.approx(whole_split, rel=0.01)
    assert len(kind.decode(val)) / len(val) != pytest.approx(len(kind.decode(load_corpus(cfg.data).train)) /
                                                             len(load_corpus(cfg.data).train), rel=1e-3)


def test_a_byte_run_reports_bits_per_byte(text_file, tmp_path):
    trained = seqkit.load(seqkit.train(tiny_config(text_file, out=tmp_path / "run", tokenizer="byte")))
    summary = trained.info["summary"]
    assert "best_val_bits_per_byte" in summary and "best_val_bits_per_char" not in summary
    metrics = trained.evaluate(str(text_file))
    assert "bits_per_byte" in metrics and "bits_per_char" not in metrics


def test_frame_accuracy_and_f1_against_hand_counts():
    kind = KINDS["pianoroll"](low=60, high=63)  # four keys
    model = build_model(ModelConfig(family="ar", vocab_size=4, frames=True, context=2, window=2, d_embed=3))
    with torch.no_grad():  # every prediction: keys 0 and 1 on (logit +1), keys 2 and 3 off (logit -1)
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([1.0, 1.0, -1.0, -1.0]))
    song = np.array([[1, 1, 1, 1], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.uint8)
    metrics = kind.evaluate(model, [song])
    tp, fp, fn = 1 + 1 + 0, 1 + 1 + 2, 0 + 1 + 0  # targets {0}, {1, 2}, {} against predictions {0, 1}
    assert metrics["frames"] == 3
    assert metrics["accuracy"] == pytest.approx(tp / (tp + fp + fn))
    assert metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    softplus = lambda z: math.log1p(math.exp(z))  # noqa: E731
    nll = sum(softplus(z) - int(y) * z for frame in song[1:] for y, z in zip(frame, [1, 1, -1, -1]))
    assert metrics["nll_per_frame"] == pytest.approx(nll / 3)


# --- the demo's baselines on a hand-made corpus --------------------------------------------------

def test_song_demo_baselines_on_a_two_piece_corpus():
    kind = KINDS["midi"]()
    melody = lambda pitches: NoteList([Note(p, i, 1) for i, p in enumerate(pitches)], [(0, 4, 4)])  # noqa: E731
    train = [np.array(kind.encode_notes(melody([60, 60, 62, 60, 60, 60, 64, 60])))]
    test = [np.array(kind.encode_notes(melody([65, 65, 65, 67, 62, 62, 64, 60])))]  # bar 2: 62 62 64 60
    model = build_model(ModelConfig(family="lstm", vocab_size=kind.vocab_size, d_embed=8, d_hidden=8, n_layers=1))
    scores = score_pieces(TrainedModel(None, None, kind, model, {}), test, train, bars=1)
    # repeat last note: 67→62 miss, 62→62 hit, 62→64 miss, 64→60 miss; unigram always says 60 (6 of 8 in train)
    assert scores["repeat last note"]["top1_pitch"] == pytest.approx(1 / 4)
    assert scores["repeat last note"]["top5_pitch"] == pytest.approx(1 / 4)
    assert scores["unigram"]["top1_pitch"] == pytest.approx(1 / 4)
    assert math.isfinite(scores["model"]["nll_per_token"])


# --- the transformer past its context, against an independent reference ---------------------------

def reference_transformer(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits of `model`'s weights computed position by position: each query attends to the `context`
    latest keys (itself included), rotary angles p * 10000^(-2i/d) on pairs (i, i + d/2)."""
    cfg = model.cfg
    d, heads = cfg.d_embed, cfg.n_heads
    hd = d // heads
    x = model.embed.weight[ids[0]]
    T = x.size(0)
    inv = 10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * inv[None]  # (T, hd/2)

    def rope(v):  # (T, heads, hd)
        a, b = v[..., :hd // 2], v[..., hd // 2:]
        c, s = angle.cos()[:, None], angle.sin()[:, None]
        return torch.cat([a * c - b * s, a * s + b * c], -1)

    x = x.double()
    for block in model.blocks:
        h = F.layer_norm(x, (d,), block.ln_attn.weight.double(), block.ln_attn.bias.double())
        q, k, v = (h @ block.attn.qkv.weight.double().T + block.attn.qkv.bias.double()).split(d, -1)
        q, k, v = (t.view(T, heads, hd) for t in (q, k, v))
        q, k = rope(q), rope(k)
        out = torch.zeros(T, heads, hd, dtype=torch.float64)
        for t in range(T):
            keys = range(max(0, t - cfg.context + 1), t + 1)
            for head in range(heads):
                scores = torch.stack([q[t, head] @ k[j, head] for j in keys]) / math.sqrt(hd)
                weights = scores.softmax(0)
                out[t, head] = sum(w * v[j, head] for w, j in zip(weights, keys))
        x = x + out.reshape(T, d) @ block.attn.proj.weight.double().T + block.attn.proj.bias.double()
        h = F.layer_norm(x, (d,), block.ln_mlp.weight.double(), block.ln_mlp.bias.double())
        up, down = block.mlp[0], block.mlp[2]
        h = F.gelu(h @ up.weight.double().T + up.bias.double())
        x = x + h @ down.weight.double().T + down.bias.double()
    x = F.layer_norm(x, (d,), model.ln_final.weight.double(), model.ln_final.bias.double())
    return x @ model.head.weight.double().T


def test_multi_layer_transformer_past_its_context_matches_a_reference():
    torch.manual_seed(0)
    model = build_model(ModelConfig(family="transformer", vocab_size=11, context=5, d_embed=16, n_heads=2,
                                    n_layers=3)).eval()
    ids = torch.randint(0, 11, (1, 17))  # more than three contexts
    with torch.no_grad():
        fed = torch.cat([outputs for _, outputs, _ in feed(model, ids)], 1)[0]
        one_by_one, state = [], None
        for t in range(ids.size(1)):
            logits, state = model(ids[:, t:t + 1], state)
            one_by_one.append(logits[0, 0])
        expected = reference_transformer(model, ids).float()
    assert torch.allclose(fed, expected, atol=1e-4)
    assert torch.allclose(torch.stack(one_by_one), expected, atol=1e-4)
