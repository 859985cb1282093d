"""Continue a song: prime with its opening bars, sample, write MIDI files and piano rolls."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from seqkit.music.notes import transpose_notes
from seqkit.music.pianoroll import PREDICTION, PROMPT, plot_pianoroll


def opening_bars(tokenizer, ids: list[int], bars: int) -> list[int]:
    """The tokens of the first `bars` bars (BOS included) and the next Bar token: a continuation
    starts in a bar of its own and cannot add notes to the prompt's last bar."""
    bar = tokenizer.ids["Bar", None]
    starts = [i for i, token in enumerate(ids) if token == bar]
    cut = starts[bars] + 1 if len(starts) > bars else len(ids)
    return [t for t in ids[:cut] if t != tokenizer.eos_id]


def until_eos(tokenizer, ids: list[int]) -> list[int]:
    return ids[:ids.index(tokenizer.eos_id) + 1] if tokenizer.eos_id in ids else ids


def new_notes(tokenizer, prompt: list[int], full: list[int]):
    """The notes of `full` that are not the prompt's own."""
    remaining = Counter(tokenizer.decode_notes(prompt))
    fresh = []
    for note in tokenizer.decode_notes(full):
        if remaining[note]:
            remaining[note] -= 1
        else:
            fresh.append(note)
    return fresh


def generate_music(trained, prompt_file: Path | None, bars: int, out: Path, **sampling) -> list[Path]:
    """Write one MIDI file (+ PNG piano roll beside it) per sample; returns the MIDI paths."""
    tokenizer = trained.tokenizer
    check_midi_name(out)
    ids, shift = [tokenizer.bos_id], 0
    if prompt_file:  # normalize_key reads the key from the prompt's bars alone
        ids, shift = tokenizer.encode_keyed(tokenizer.read_piece(prompt_file), key_bars=bars)
    prompt = opening_bars(tokenizer, ids, bars)
    samples = trained.generate_ids(prompt, **sampling)
    paths = numbered(out, len(samples))
    back = -shift  # normalize_key: files in the prompt's own key
    prompt_notes = transpose_notes(tokenizer.decode_notes(prompt), back)
    for ids, path in zip(samples, paths):
        ids = until_eos(tokenizer, ids)
        tokenizer.write_midi(ids, path, transpose=back)
        title = f"{path.name}: {bars} bars of {prompt_file.name} + continuation" if prompt_file else path.name
        continuation = transpose_notes(new_notes(tokenizer, prompt, ids), back)
        plot_pianoroll(path.with_suffix(".png"), [("prompt", prompt_notes, PROMPT),
                                                  ("continuation", continuation, PREDICTION)], title=title)
    return paths


def generate_roll_music(trained, prompt_file: Path | None, bars: int, out: Path, max_new_tokens: int,
                        temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                        seed: int | None = None, num_samples: int = 1, min_new_tokens: int = 0) -> list[Path]:
    """`seqkit generate` for a piano-roll model: prime with the first `bars` 4/4 bars of `prompt_file`
    (or one silent frame), sample `max_new_tokens` frames; write MIDI + PNG per sample."""
    roll = trained.tokenizer
    check_midi_name(out)
    prime = roll.read_roll(prompt_file)[:bars * 4 * roll.frames_per_quarter] if prompt_file else roll.start_prompt()
    if prompt_file and not len(prime):
        raise ValueError(f"{prompt_file}: no notes in its first {bars} bars")
    steps = list(trained.stream(prime, max_new_tokens, temperature, top_k, top_p, seed, num_samples, min_new_tokens))
    start = roll.prompt_tensor(prime, 1, "cpu")[0].numpy().astype(np.uint8)
    samples = [np.concatenate([start, new]) for new in torch.stack(steps, 1).to(torch.uint8).cpu().numpy()]
    paths = numbered(out, len(samples))
    prompt_notes = roll.roll_to_notes(start)
    shift = len(start) / roll.frames_per_quarter
    for sample, path in zip(samples, paths):
        roll.write_midi(sample, path)
        continuation = [n._replace(start=n.start + shift) for n in roll.roll_to_notes(sample[len(start):])]
        title = f"{path.name}: {bars} bars of {prompt_file.name} + continuation" if prompt_file else path.name
        plot_pianoroll(path.with_suffix(".png"), [("prompt", prompt_notes, PROMPT),
                                                  ("continuation", continuation, PREDICTION)], title=title)
    return paths


def check_midi_name(out: Path) -> None:
    if out.suffix.lower() not in (".mid", ".midi"):
        raise ValueError(f"{out}: the output of a music model is a MIDI file; name it .mid")


def numbered(out: Path, n: int) -> list[Path]:
    """`out` for one sample; out_1, out_2, ... for several."""
    return [out] if n == 1 else [out.with_name(f"{out.stem}_{i + 1}{out.suffix}") for i in range(n)]


def report_files(paths: list[Path], echo, audio: bool = False, soundfont=None) -> None:
    """Say what was written for each MIDI file (its PNG beside it); with `audio`, also render x.wav."""
    from seqkit.music.audio import AUTO, render_wav

    for path in paths:
        wav = path.with_suffix(".wav")
        played = f" and {wav} ({render_wav(path, wav, soundfont or AUTO)})" if audio else ""
        echo(f"wrote {path}, {path.with_suffix('.png')}{played}")
