"""How well each `data.key_estimate` places the Bach chorales: every piece moved by its first 4 bars, as
`data.normalize_key` moves it, then the share of the music after those bars that lies on the white keys
(C major's scale). A piece moved a fifth away leaves much of its music on black keys. Prints a line per
estimate; asserts nothing. `.venv/bin/python bench/key_estimates.py` (about 1½ minutes).
"""
from __future__ import annotations

import warnings

import numpy as np

from seqkit.music.corpus import bach_pieces
from seqkit.music.stats import bar_start
from seqkit.music.tokenizer import KEY_BARS, KEY_ESTIMATES, WHITE_KEYS, MidiTokenizer


def main() -> None:
    warnings.filterwarnings("ignore")  # music21's notes on odd corpus files
    tokenizers = {name: MidiTokenizer(normalize_key=True, key_estimate=name) for name in KEY_ESTIMATES}
    shares = {name: [] for name in KEY_ESTIMATES}
    for path in bach_pieces():
        piece = MidiTokenizer().read_piece(path)
        after = piece.start >= bar_start(piece.time_signatures, KEY_BARS)
        for name, tokenizer in tokenizers.items():
            pitch_classes = (piece.pitch[after] + tokenizer.key_shift(piece)) % 12
            shares[name].append(piece.duration[after][WHITE_KEYS[pitch_classes]].sum() / piece.duration[after].sum())
    for name, values in shares.items():
        values = np.array(values)
        print(f"key_estimate={name}: {len(values)} chorales; on the white keys after the opening: "
              f"{values.mean():.3f} of the time on average, under 80% in {(values < 0.8).sum()} of them")


if __name__ == "__main__":
    main()
