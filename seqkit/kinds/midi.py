"""MIDI events: the REMI-style tokenizer of `seqkit.music.tokenizer` as a data kind."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from seqkit.kinds.base import DataKind
from seqkit.music.corpus import tokenize_pieces
from seqkit.music.data import corpus_pieces, load_music_corpus
from seqkit.music.fidelity import fidelity_lines, round_trip_fidelity
from seqkit.music.tokenizer import MidiTokenizer

# data.* config fields that describe a new MIDI tokenizer (a trained run's tokenizer.json is the truth)
CONFIG_FIELDS = ("grid", "velocity_bins", "tempo", "time_signature", "programs", "max_duration_quarters",
                 "pitch_low", "pitch_high", "normalize_key", "key_estimate")


class MidiKind(DataKind, MidiTokenizer):
    name = "midi"

    @classmethod
    def from_config(cls, cfg) -> MidiKind:
        return cls(**{name: getattr(cfg, name) for name in CONFIG_FIELDS})

    def saved_settings(self) -> dict:
        return asdict(self.settings)

    @classmethod
    def from_saved(cls, settings: dict) -> MidiKind:
        return cls(**{"key_estimate": "krumhansl", **settings})  # saved before "scale" came: as its pieces were moved

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

    @property
    def end_id(self) -> int:
        return self.eos_id

    def start_prompt(self) -> list[int]:
        return [self.bos_id]

    def encode_prompt(self, prompt: str) -> list[int]:
        raise ValueError("a music model is primed with a file: use --prompt-file song.mid (and --bars)")

    @classmethod
    def tokenize_file(cls, path: Path, cfg):
        tokenizer = cls.from_config(cfg)

        def write_back(ids, out: Path) -> str:
            tokenizer.write_midi(ids, out)
            counts = round_trip_fidelity(tokenizer.read_notes(path), tokenizer)
            return "\n".join([f"wrote {out}", *fidelity_lines(counts)])

        return tokenizer, tokenizer.encode_file(path), write_back

    def write_samples(self, trained, prompt: str, sampling: dict, echo, prompt_file=None, bars: int = 4,
                      out: Path | None = None, audio: bool = False, soundfont=None) -> None:
        """MIDI files with piano-roll PNGs beside them (and WAVs with `audio`)."""
        from seqkit.music.generate import generate_music, report_files

        paths = generate_music(trained, prompt_file, bars, out or Path("generated.mid"), **sampling)
        report_files(paths, echo, audio, soundfont)

    def write_sample(self, new, stem: Path) -> Path:
        from seqkit.music.generate import until_eos
        from seqkit.music.pianoroll import PREDICTION, plot_pianoroll

        ids = until_eos(self, [self.bos_id, *map(int, new)])
        path = Path(stem).with_suffix(".mid")
        self.write_midi(ids, path)
        plot_pianoroll(path.with_suffix(".png"), [("sample", self.decode_notes(ids), PREDICTION)], title=path.stem)
        return path

    def sample_text(self, ids) -> str:
        return " ".join(self.describe(ids))
