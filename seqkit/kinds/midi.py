"""MIDI events: the REMI-style tokenizer of `seqkit.music.tokenizer` as a data kind."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from seqkit.kinds.base import DataKind
from seqkit.music.corpus import tokenize_pieces
from seqkit.music.data import corpus_pieces, load_music_corpus
from seqkit.music.tokenizer import MidiSettings, MidiTokenizer

# data.* config fields that describe a new MIDI tokenizer (a trained run's tokenizer.json is the truth)
CONFIG_FIELDS = ("grid", "velocity_bins", "tempo", "time_signature", "programs")


class MidiKind(DataKind, MidiTokenizer):
    name = "midi"

    @classmethod
    def from_config(cls, cfg) -> MidiKind:
        return cls(**{name: getattr(cfg, name) for name in CONFIG_FIELDS if name in MidiSettings.__dataclass_fields__})

    def saved_settings(self) -> dict:
        return asdict(self.settings)

    @classmethod
    def read_corpus(cls, cfg, fitted=None):
        return load_music_corpus(cfg, fitted or cls.from_config(cfg))

    @classmethod
    def tokenize_folder(cls, cfg) -> tuple[int, int, int]:
        pieces = corpus_pieces(cfg.source)
        ids, skipped = tokenize_pieces(pieces, cls.from_config(cfg), Path(cfg.cache_dir) / "music", cfg.workers or None)
        return len(pieces), sum(len(piece) for piece in ids), len(skipped)

    @classmethod
    def check_source(cls, source: str, is_music: bool) -> None:
        if not is_music:
            raise ValueError(f"{source} is not music, but the tokenizer is midi: use MIDI/score files "
                             "(or --tokenizer char for text)")

    def start_prompt(self) -> list[int]:
        return [self.bos_id]

    def encode_prompt(self, prompt: str) -> list[int]:
        raise ValueError("a music model is primed with a file: use --prompt-file song.mid (and --bars)")

    @classmethod
    def tokenize_file(cls, path: Path, cfg):
        tokenizer = cls.from_config(cfg)

        def write_back(ids, out: Path) -> str:
            tokenizer.write_midi(ids, out)
            return f"wrote {out}"

        return tokenizer, tokenizer.encode_file(path), write_back

    def write_samples(self, trained, prompt: str, sampling: dict, echo, prompt_file=None, bars: int = 4,
                      out: Path | None = None) -> None:
        from seqkit.music.generate import generate_music

        for path in generate_music(trained, prompt_file, bars, out or Path("generated.mid"), **sampling):
            echo(f"wrote {path} and {path.with_suffix('.png')}")

    def sample_text(self, ids) -> str:
        return " ".join(self.describe(ids))
