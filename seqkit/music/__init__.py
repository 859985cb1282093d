"""Music: MIDI/score files ↔ notes ↔ REMI-style tokens, the Bach chorale corpus, piano-roll plots.

- `tokenizer`: `MidiTokenizer` (read files, encode/decode tokens, write MIDI).
- `corpus`: built-in and folder data sets, cached parallel tokenisation, transposition.
- `pianoroll`: matplotlib piano rolls of note lists.
"""
