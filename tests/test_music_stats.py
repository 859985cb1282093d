"""seqkit.music.stats on hand-made note lists, against answers worked out by hand, and on real chorales
against music21's Krumhansl-Schmuckler key and MusPy's metrics."""
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqkit.models import FAMILIES
from seqkit.music import muspy_metrics, stats
from seqkit.music.corpus import bach_pieces
from seqkit.music.notes import Note, NoteList
from seqkit.music.tokenizer import MidiTokenizer

C, D, E, F, FS, G, GS, A, B = 60, 62, 64, 65, 66, 67, 68, 69, 71


def n(pitch, start, duration=1.0):
    return Note(pitch, float(start), float(duration))


def scale(pitches, start=0.0, duration=1.0):
    return [n(p, start + i * duration, duration) for i, p in enumerate(pitches)]


# --- pitch ---------------------------------------------------------------------------------------

def test_pitch_class_histogram_weights_by_duration_and_folds_octaves():
    h = stats.pitch_class_histogram([n(C, 0, 3), n(FS, 3, 2), n(C + 12, 5, 1)])
    assert h[0] == pytest.approx(4 / 6) and h[6] == pytest.approx(2 / 6)
    assert h.sum() == pytest.approx(1.0) and (h > 0).sum() == 2
    assert not stats.pitch_class_histogram([]).any()


def test_pitch_class_distance_is_half_l1():
    assert stats.pitch_class_distance([n(C, 0)], [n(C, 0), n(G, 1)]) == pytest.approx(0.5)
    assert stats.pitch_class_distance([n(C, 0, 3)], [n(C, 0), n(G, 1)]) == pytest.approx(0.5)  # shares, not seconds
    assert stats.pitch_class_distance([n(C, 0, 3), n(G, 3)], [n(C, 0), n(G, 1)]) == pytest.approx(0.25)
    assert stats.pitch_class_distance([n(C, 0)], [n(C + 24, 5)]) == 0.0
    assert stats.pitch_class_distance([n(C, 0)], [n(FS, 0)]) == 1.0
    assert stats.pitch_class_distance([], [n(C, 0)]) == 1.0
    assert stats.pitch_class_distance([], []) == 0.0


def test_pitch_range_and_pitch_class_entropy():
    assert muspy_metrics.pitch_range([n(C, 0), n(G, 1), n(G - 12, 2)]) == 12
    assert muspy_metrics.pitch_range([]) == 0
    assert muspy_metrics.pitch_class_entropy([n(C, 0), n(C + 12, 1), n(G, 2), n(G, 3, 8)]) == pytest.approx(1.0)  # counts
    assert muspy_metrics.pitch_class_entropy([n(C, 0), n(D, 1), n(E, 2), n(F, 3)]) == pytest.approx(2.0)
    assert muspy_metrics.pitch_class_entropy([n(C, 0), n(C, 1)]) == 0.0
    assert math.isnan(muspy_metrics.pitch_class_entropy([]))


def test_scale_consistency_is_the_best_major_or_minor_scale():
    c_major = scale([C, D, E, F, G, A, B])
    assert muspy_metrics.scale_consistency(c_major) == 1.0
    assert muspy_metrics.scale_consistency(c_major + [n(FS, 8)]) == pytest.approx(7 / 8)  # C or G major: 7 of 8
    assert muspy_metrics.scale_consistency(scale(range(60, 72))) == pytest.approx(7 / 12)
    assert muspy_metrics.scale_consistency(scale([C, D, E - 1, F, G, A - 1, B - 1])) == 1.0  # C natural minor
    assert math.isnan(muspy_metrics.scale_consistency([]))


KEYED = {  # note lists whose key a musician would name at once
    (0, "major"): [n(C, 0, 2), *scale([D, E, F], 2), n(G, 5, 2), *scale([A, B], 7), n(C + 12, 9, 2)],
    (9, "minor"): [n(A - 12, 0, 3), *scale([B - 12, C, D, E], 3), n(F, 7), n(GS, 8), n(A, 9, 3), n(E, 12, 2)],
    (7, "major"): [n(G, 0, 2), n(B, 2), n(D + 12, 3, 2), n(FS, 5), n(G, 6, 2), n(A, 8), n(C, 9), n(D, 10, 2)],
}


@pytest.mark.parametrize("expected", KEYED)
def test_krumhansl_key_names_the_key(expected):
    assert stats.krumhansl_key(KEYED[expected]) == expected


@pytest.mark.parametrize("name", ["bwv111.6", "bwv122.6", "bwv174.5", "bwv2.6"])
def test_krumhansl_key_is_music21s_krumhansl_schmuckler_on_real_chorales(name):
    """Chorales where music21's analyze('key') (Aarden-Essen since music21 9) names another key than
    analyze('Krumhansl'): the estimate must be the latter's."""
    from music21 import converter

    path = next(p for p in bach_pieces() if Path(p).name.startswith(f"{name}."))
    score = converter.parse(path)
    krumhansl, aarden = score.analyze("Krumhansl"), score.analyze("key")
    assert (aarden.tonic.pitchClass, aarden.mode) != (krumhansl.tonic.pitchClass, krumhansl.mode)
    assert stats.krumhansl_key(MidiTokenizer().read_notes(path)) == (krumhansl.tonic.pitchClass, krumhansl.mode)


def test_krumhansl_key_needs_notes_and_same_key_compares_tonic_and_mode():
    assert stats.krumhansl_key([]) is None
    c_major, a_minor, g_major = (KEYED[k] for k in ((0, "major"), (9, "minor"), (7, "major")))
    assert stats.same_krumhansl_key(c_major, [note._replace(pitch=note.pitch + 12) for note in c_major])
    assert not stats.same_krumhansl_key(c_major, g_major)
    assert not stats.same_krumhansl_key(c_major, a_minor)  # relative keys share a scale but not a key
    assert not stats.same_krumhansl_key([], c_major) and not stats.same_krumhansl_key(c_major, [])


# --- time ----------------------------------------------------------------------------------------

def test_bar_start_follows_time_signatures():
    assert stats.bar_start([], 4) == 16.0
    assert stats.bar_start([(0.0, 3, 4)], 4) == 12.0
    assert stats.bar_start([(0.0, 6, 8)], 2) == 6.0
    assert stats.bar_start([(0.0, 4, 4), (8.0, 3, 4)], 4) == 14.0  # 4 + 4 + 3 + 3
    assert stats.bar_start([(0.0, 4, 4), (6.0, 3, 4)], 4) == 14.0  # a change inside a bar waits for its end
    assert stats.bar_start(NoteList([], time_signatures=[(0.0, 2, 4)]).time_signatures, 3) == 6.0
    assert stats.bar_start([(0.0, 3, 4)], 0) == 0.0


def test_notes_per_quarter_counts_onsets_in_the_span():
    notes = [n(C, 16), n(E, 16), n(G, 17), n(C, 18), n(E, 19, 0.5), n(G, 19.5, 0.5), n(C, 20)]
    assert stats.notes_per_quarter(notes, 16, 20) == pytest.approx(6 / 4)
    assert stats.notes_per_quarter(notes, 16) == pytest.approx(7 / 5)  # to the last note's end, 21
    assert stats.notes_per_quarter([], 16) == 0.0


def test_voices_sounding_counts_notes_on_each_beat():
    notes = [n(C, 0, 4), n(E, 0, 1), n(G, 2, 2), n(B, 2.5, 0.5)]  # beats 0..3: 2, 1, 2, 2 (B is off the beat)
    assert stats.voices_sounding(notes) == pytest.approx(7 / 4)
    assert stats.voices_sounding(notes, 0, 8) == pytest.approx(7 / 8)  # four silent beats after
    assert stats.voices_sounding(notes, 2, 4) == pytest.approx(2.0)
    assert math.isnan(stats.voices_sounding([]))


def test_polyphony_averages_over_sounding_ticks_only():
    notes = [n(C, 0), n(E, 0), n(G, 0.5)]  # eighths: 2, 3, 1
    assert muspy_metrics.polyphony(notes) == pytest.approx((2 + 3 + 1) / 3)
    assert muspy_metrics.polyphony(notes + [n(A, 3)]) == pytest.approx((2 + 3 + 1 + 1 + 1) / 5)  # silence left out
    assert math.isnan(muspy_metrics.polyphony([]))


def test_empty_beat_rate_marks_each_notes_beats_from_onset_to_end_inclusive():
    assert muspy_metrics.empty_beat_rate([n(C, 0), n(E, 2, 0.5)]) == 0.0  # [0, 1) marks beats 0 and 1
    assert muspy_metrics.empty_beat_rate([n(C, 0, 0.5), n(E, 2, 0.5)]) == pytest.approx(1 / 3)  # beat 1 empty
    assert muspy_metrics.empty_beat_rate([n(C, 0.5, 1), n(E, 3), n(G, 5.25, 2)]) == pytest.approx(1 / 8)  # beat 2
    assert muspy_metrics.empty_beat_rate([n(C, 3)]) == pytest.approx(3 / 5)  # beats 0..2 before it count
    assert math.isnan(muspy_metrics.empty_beat_rate([]))


def muspy_music(notes, resolution=muspy_metrics.RESOLUTION):
    """The notes as MusPy holds them: one track per program, onsets and durations in ticks."""
    import muspy

    tracks = {}
    for note in notes:
        tracks.setdefault(note.program, []).append(muspy.Note(
            time=round(note.start * resolution), pitch=note.pitch, duration=round(note.duration * resolution),
            velocity=note.velocity))
    return muspy.Music(resolution=resolution, tracks=[muspy.Track(program=program, notes=notes)
                                                      for program, notes in tracks.items()] or [muspy.Track()])


MUSPY_NAMES = ("pitch_range", "pitch_class_entropy", "scale_consistency", "polyphony", "empty_beat_rate")


def assert_muspys(notes, ours: dict):
    """Each of `ours` ({MusPy's metric name: value}) is what MusPy computes on `notes`."""
    import muspy

    music = muspy_music(notes)
    for name, value in ours.items():
        expected = getattr(muspy, name)(music)
        assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected), name


NOTES_ON_TICKS = st.lists(st.builds(lambda pitch, start, duration, program: Note(pitch, start / 24, duration / 24,
                                                                                 64, program),
                                    st.integers(0, 127), st.integers(0, 300), st.integers(0, 120), st.integers(0, 3)),
                          max_size=12)


@settings(max_examples=150, deadline=None)
@given(NOTES_ON_TICKS)
def test_muspy_metrics_are_muspys_own(notes):
    assert_muspys(notes, {name: getattr(muspy_metrics, name)(notes) for name in MUSPY_NAMES})


def test_muspy_metrics_are_muspys_own_on_a_real_chorale():
    notes = MidiTokenizer().read_notes(bach_pieces()[0])
    assert_muspys(notes, {name: getattr(muspy_metrics, name)(notes) for name in MUSPY_NAMES})


# --- overlap -------------------------------------------------------------------------------------

def test_onset_set_is_in_sixteenths_from_the_piece_start():
    assert stats.onset_set([n(C, 16), n(E, 16.25), n(G, 32)], 16, 32) == {(64, C), (65, E)}


def test_overlap_is_jaccard_after_the_later_prompt():
    a = [n(C, 16), n(E, 17), n(G, 40)]
    b = [n(C, 16), n(G, 18), n(E, 40)]
    assert stats.overlap(a, 16, b, 12) == pytest.approx(1 / 3)  # window [16, 32): {C@16, E@17} vs {C@16, G@18}
    assert stats.overlap(a, 16, b, 17) == 0.0  # window [17, 33): {E@17} vs {G@18}
    assert stats.overlap(a, 16, a, 16) == 1.0
    assert stats.overlap(a, 16, b, 16, quarters=30) == pytest.approx(1 / 5)  # G@40 and E@40 now count
    assert stats.overlap([], 16, [], 16) == 0.0


def test_mean_overlap_averages_all_pairs():
    a, b, c = [n(C, 16)], [n(C, 16)], [n(E, 16)]
    assert stats.mean_overlap([a, b, c], [16, 16, 16]) == pytest.approx((1 + 0 + 0) / 3)
    assert math.isnan(stats.mean_overlap([a], [16]))


# --- the table -----------------------------------------------------------------------------------

def two_pieces():
    prompt = [n(C, 0, 4), n(E, 4, 4), n(G, 8, 4), n(C, 12, 4)]  # 4 bars of 4/4, one note a bar
    first = stats.Continuation(prompt, 16.0, model=[n(C, 16, 2), n(G, 18, 2)], bach=[n(C, 16, 4)])
    second = stats.Continuation(prompt, 16.0, model=[n(FS, 16, 2)], bach=[n(C, 16, 2), n(G, 18, 2)])
    return [first, second]


def test_continuation_rows_average_over_pieces():
    rows = stats.continuation_rows(two_pieces())  # windows [16, 20) and [16, 18): the second's Bach is C alone
    model, bach, prompt = rows["model"], rows["Bach"], rows["prompt"]
    assert model["pc_distance"] == pytest.approx((0.5 + 1.0) / 2)
    assert math.isnan(bach["pc_distance"])
    assert prompt["pc_distance"] == pytest.approx((0.5 + 0.5) / 2)  # prompt C 1/2, E 1/4, G 1/4 against C twice
    assert model["notes_per_quarter"] == pytest.approx((2 / 4 + 1 / 2) / 2)
    assert bach["notes_per_quarter"] == pytest.approx((1 / 4 + 1 / 2) / 2)
    assert prompt["notes_per_quarter"] == pytest.approx(4 / 16)
    assert model["length"] == bach["length"] == rows["other Bach"]["length"] == 3.0 and prompt["length"] == 16.0
    assert model["length_vs_bach"] == (1 + 0.5) / 2 and bach["length_vs_bach"] == 1.0
    assert prompt["length_vs_bach"] == 4.0
    assert model["overlap"] == 0.0  # {C@16, G@18} vs {F#@16}
    assert bach["overlap"] == 1.0  # {C@16} vs {C@16}: the second's G@18 is after its window
    assert math.isnan(prompt["overlap"]) and math.isnan(prompt["same_key"])
    assert model["voices"] == bach["voices"] == prompt["voices"] == 1.0
    assert model["pitch_range"] == pytest.approx((7 + 0) / 2)


def test_every_row_is_measured_over_the_shorter_continuation():
    """The model runs 8 quarters, Bach 5: model and Bach are both measured over [16, 21), the model's G cut
    at 21 and its B left out; the prompt over [0, 16), its last C cut at 16."""
    prompt = [n(C, 0, 4), n(E, 4, 4), n(G, 8, 4), n(C, 12, 8)]
    piece = stats.Continuation(prompt, 16.0, model=[n(C, 16, 2), n(E, 18, 2), n(G, 20, 2), n(B, 22, 2)],
                               bach=[n(C, 16, 3), n(G, 19, 2)])
    rows = stats.continuation_rows([piece])
    model, bach, prompt_row = rows["model"], rows["Bach"], rows["prompt"]
    assert model["length"] == bach["length"] == 5.0 and prompt_row["length"] == 16.0
    assert model["length_vs_bach"] == 8 / 5 and bach["length_vs_bach"] == 1.0 and prompt_row["length_vs_bach"] == 16 / 5
    assert model["pc_distance"] == pytest.approx(0.4)  # C 2/5, E 2/5, G 1/5 against C 3/5, G 2/5
    assert prompt_row["pc_distance"] == pytest.approx(0.25)  # C 1/2, E 1/4, G 1/4 against C 3/5, G 2/5
    assert model["notes_per_quarter"] == pytest.approx(3 / 5) and bach["notes_per_quarter"] == pytest.approx(2 / 5)
    assert model["pitch_range"] == G - C
    assert model["polyphony"] == bach["polyphony"] == 1.0
    silent_model = stats.Continuation(prompt, 16.0, model=[], bach=piece.bach)  # no window: left out of the rows
    both = stats.continuation_rows([piece, silent_model])
    numbers = lambda row: {key: value for key, value in row.items() if not math.isnan(value)}  # noqa: E731
    assert numbers(both["model"]) == numbers(model) and numbers(both["Bach"]) == numbers(bach)
    assert both["prompt"]["length"] == 16.0


@pytest.mark.parametrize("notes", [
    [n(C, 0), n(E, 2, 0.5)],  # MusPy: [0, 1) plays in beats 0 and 1, so no beat is empty
    [n(C, 0.5, 1), n(E, 3), n(G, 5.25, 2)],  # MusPy: only beat 2 is empty
    [n(D, 0, 0.5), *(n(p, i / 6, 1 / 6) for i, p in enumerate((C, E, G)))],  # sixteenth triplets over a D
])
def test_the_tables_muspy_columns_are_muspys_metrics_of_the_window_from_0(notes):
    at_16 = [note._replace(start=note.start + 16) for note in notes]
    rows = stats.continuation_rows([stats.Continuation([n(C, 0, 16)], 16.0, model=at_16, bach=at_16)])
    columns = {"pitch_range": "pitch_range", "pitch_class_entropy": "pc_entropy",
               "scale_consistency": "scale_consistency", "polyphony": "polyphony", "empty_beat_rate": "empty_beat_rate"}
    for row in ("model", "Bach"):
        assert_muspys(notes, {name: rows[row][column] for name, column in columns.items()})


def test_other_bach_moves_another_piece_of_the_same_mode_into_this_key():
    c_major, a_minor, g_major = (KEYED[k] for k in ((0, "major"), (9, "minor"), (7, "major")))
    pieces = [stats.Continuation(c_major, 12.0, [], [n(E, 12), n(G, 13)]),
              stats.Continuation(a_minor, 13.0, [], [n(A, 13)]),
              stats.Continuation(g_major, 16.0, [], [n(D, 16, 2)])]
    assert stats.other_bach(pieces) == [[n(G, 12, 2)],  # the G major piece's D, up a fourth, at 12
                                        None,  # no other minor prompt
                                        [n(B - 12, 16), n(D, 17)]]  # the C major piece's E G, down a fourth, 4 later


def test_continuation_rows_reference_other_bach():
    rows = stats.continuation_rows(two_pieces())  # one prompt, so each piece's partner is the other piece
    assert rows["other Bach"]["pc_distance"] == pytest.approx((0.5 + 0) / 2)  # {C, G} vs {C}; {C} vs {C}, in [16, 18)
    assert rows["other Bach"]["overlap"] == pytest.approx(1 / 2)


def test_format_table_shows_every_row_and_column():
    text = stats.format_table(stats.continuation_rows(two_pieces()))
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["model", "Bach", "other", "prompt"]
    assert lines[1].split()[1] == "0.750" and lines[2].split()[1] == "—" and lines[3].split()[2] == "0.250"
    assert all(header in lines[0] for header, _, _ in stats.COLUMNS.values())
    assert "pitch-class distance" in text
    assert "pitch-class distance" not in stats.format_table(stats.continuation_rows(two_pieces()), legend=False)


# --- sampling ------------------------------------------------------------------------------------

def test_sample_continuations_primes_with_bars_and_is_seeded():
    import torch

    from seqkit.api import TrainedModel
    from seqkit.models import ModelConfig, build_model
    from seqkit.music.generate import opening_bars
    from seqkit.kinds.midi import MidiKind

    tokenizer = MidiKind()
    four_four = NoteList([n(C + i % 5, i) for i in range(24)], time_signatures=[(0.0, 4, 4)])  # 6 bars
    three_four = NoteList([n(G + i % 3, i) for i in range(18)], time_signatures=[(0.0, 3, 4)])  # 6 bars
    pieces = [tokenizer.encode_notes(four_four), tokenizer.encode_notes(three_four)]
    torch.manual_seed(0)
    model = build_model(ModelConfig(family="lstm", vocab_size=tokenizer.vocab_size, d_embed=8, d_hidden=16,
                                    n_layers=1, context=32)).eval()
    trained = TrainedModel(None, None, tokenizer, model, {})
    result = stats.sample_continuations(trained, pieces, bars=4, max_new_tokens=50, seed=3, temperature=1.0)
    assert [c.name for c in result] == ["0", "1"]
    assert [c.prompt_end for c in result] == [16.0, 12.0]
    assert [len(c.prompt) for c in result] == [16, 12]
    for piece, continuation in zip(pieces, result):
        prompt = opening_bars(tokenizer, piece, 4)
        assert list(continuation.ids[:len(prompt)]) == prompt and len(continuation.ids) > len(prompt)
        assert prompt[-1] == tokenizer.ids["Bar", None]  # the continuation starts a bar of its own
        assert len(continuation.ids) <= len(piece) + 1  # no longer than Bach's continuation, plus one
    short = stats.sample_continuations(trained, pieces, bars=4, max_new_tokens=5, seed=3, temperature=1.0)
    assert [len(c.ids) for c in short] == [len(opening_bars(tokenizer, piece, 4)) + 5 for piece in pieces]
    named = stats.sample_continuations(trained, {"a.mid": pieces[0], "too short": pieces[1][:30]}, bars=4,
                                       max_new_tokens=50, seed=3, temperature=1.0)
    alone = stats.sample_continuations(trained, [pieces[0]], bars=4, max_new_tokens=50, seed=3, temperature=1.0)
    assert [c.name for c in named] == ["a.mid"] and named[0].model == alone[0].model  # nothing after 4 bars: left out
    assert result[0].bach == [note for note in four_four if note.start >= 16]
    assert result[1].bach == [note for note in three_four if note.start >= 12]
    again = stats.sample_continuations(trained, pieces, bars=4, max_new_tokens=50, seed=3, temperature=1.0)
    assert [c.model for c in again] == [c.model for c in result]


@pytest.mark.parametrize("family", FAMILIES)
def test_continue_each_matches_one_prompt_at_a_time(family):
    """Greedy continuations of prompts of different lengths, each as long as asked: stepped as one batch
    (the rows' states joined), they are what each prompt gives alone."""
    import torch

    from seqkit.api import TrainedModel
    from seqkit.kinds.midi import MidiKind
    from seqkit.models import ModelConfig, build_model

    tokenizer = MidiKind()
    torch.manual_seed(0)
    model = build_model(ModelConfig(family=family, vocab_size=tokenizer.vocab_size, d_embed=16, d_hidden=16,
                                    n_layers=2, n_heads=2, context=16, window=4)).eval()
    trained = TrainedModel(None, None, tokenizer, model, {})
    prompts = [list(range(3, 3 + n)) for n in (2, 9, 20)]
    lengths = [7, 30, 3]
    together = trained.continue_each(prompts, lengths, temperature=0)
    alone = [trained.generate_ids(prompt, max_new_tokens=n, temperature=0)[0] for prompt, n in zip(prompts, lengths)]
    assert together == alone and [len(ids) for ids in together] == [9, 39, 23]
    with pytest.raises(ValueError, match="2 lengths for 3 prompts"):
        trained.continue_each(prompts, [1, 2])


def test_no_end_token_before_min_new_tokens():
    """A model that wants to end at once (EOS's bias raised) ends each row right after its minimum."""
    import torch

    from seqkit.api import TrainedModel
    from seqkit.kinds.midi import MidiKind
    from seqkit.models import ModelConfig, build_model

    tokenizer = MidiKind()
    model = build_model(ModelConfig(family="lstm", vocab_size=tokenizer.vocab_size, d_embed=8, d_hidden=8,
                                    n_layers=1, context=16)).eval()
    with torch.no_grad():
        model.head.bias[tokenizer.eos_id] = 50.0
    trained = TrainedModel(None, None, tokenizer, model, {})
    prompts = [[tokenizer.bos_id], [tokenizer.bos_id, 5, 6]]
    rows = trained.continue_each(prompts, [6, 6], temperature=1.0, seed=0, min_new_tokens=[0, 3])
    new = [row[len(prompt):] for row, prompt in zip(rows, prompts)]
    assert new[0][0] == tokenizer.eos_id
    assert tokenizer.eos_id not in new[1][:3] and new[1][3] == tokenizer.eos_id
    sample = trained.generate_ids([tokenizer.bos_id], max_new_tokens=4, temperature=0, min_new_tokens=2)[0]
    assert tokenizer.eos_id not in sample[1:3] and sample[3] == tokenizer.eos_id
    with pytest.raises(ValueError, match="min new tokens must be between 0 and max new tokens"):
        trained.generate_ids([tokenizer.bos_id], max_new_tokens=4, min_new_tokens=5)
    with pytest.raises(ValueError, match="1 minimum lengths for 2 prompts"):
        trained.continue_each(prompts, 4, min_new_tokens=[1])
