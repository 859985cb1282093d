"""Continue a song: prime with its opening bars, sample, write MIDI files and piano rolls."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from seqkit.music.pianoroll import PREDICTION, PROMPT, plot_pianoroll


def opening_bars(tokenizer, ids: list[int], bars: int) -> list[int]:
    """The tokens of the first `bars` bars (BOS included), cut just before the next Bar token."""
    bar = tokenizer.ids["Bar", None]
    starts = [i for i, token in enumerate(ids) if token == bar]
    cut = starts[bars] if len(starts) > bars else len(ids)
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
    if out.suffix.lower() not in (".mid", ".midi"):
        raise ValueError(f"{out}: the output of a music model is a MIDI file; name it .mid")
    if tokenizer.kind == "pianoroll":
        from seqkit.music.frames import generate_roll_music
        return generate_roll_music(trained, prompt_file, bars, out, **sampling)
    prompt = opening_bars(tokenizer, tokenizer.encode_file(prompt_file), bars) if prompt_file else [tokenizer.bos_id]
    samples = trained.generate_ids(prompt, **sampling)
    paths = [out] if len(samples) == 1 else [out.with_name(f"{out.stem}_{i + 1}{out.suffix}") for i in range(len(samples))]
    prompt_notes = tokenizer.decode_notes(prompt)
    for ids, path in zip(samples, paths):
        ids = until_eos(tokenizer, ids)
        tokenizer.write_midi(ids, path)
        title = f"{path.name}: {bars} bars of {prompt_file.name} + continuation" if prompt_file else path.name
        plot_pianoroll(path.with_suffix(".png"), [("prompt", prompt_notes, PROMPT),
                                                  ("continuation", new_notes(tokenizer, prompt, ids), PREDICTION)],
                       title=title)
    return paths
