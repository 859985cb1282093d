"""seqkit.music.stats on hand-made note lists, against answers worked out by hand."""
import math

import pytest
from music21 import note as m21note
from music21 import stream

from seqkit.models import FAMILIES
from seqkit.music import stats
from seqkit.music.notes import Note, NoteList

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
    assert stats.pitch_range([n(C, 0), n(G, 1), n(G - 12, 2)]) == 12
    assert stats.pitch_range([]) == 0
    assert stats.pitch_class_entropy([n(C, 0), n(C + 12, 1), n(G, 2), n(G, 3, 8)]) == pytest.approx(1.0)  # counts
    assert stats.pitch_class_entropy([n(C, 0), n(D, 1), n(E, 2), n(F, 3)]) == pytest.approx(2.0)
    assert stats.pitch_class_entropy([n(C, 0), n(C, 1)]) == 0.0
    assert math.isnan(stats.pitch_class_entropy([]))


def test_scale_consistency_is_the_best_major_or_minor_scale():
    c_major = scale([C, D, E, F, G, A, B])
    assert stats.scale_consistency(c_major) == 1.0
    assert stats.scale_consistency(c_major + [n(FS, 8)]) == pytest.approx(7 / 8)  # C or G major: 7 of 8
    assert stats.scale_consistency(scale(range(60, 72))) == pytest.approx(7 / 12)
    assert stats.scale_consistency(scale([C, D, E - 1, F, G, A - 1, B - 1])) == 1.0  # C natural minor
    assert math.isnan(stats.scale_consistency([]))


KEYED = {  # note lists whose key a musician would name at once
    (0, "major"): [n(C, 0, 2), *scale([D, E, F], 2), n(G, 5, 2), *scale([A, B], 7), n(C + 12, 9, 2)],
    (9, "minor"): [n(A - 12, 0, 3), *scale([B - 12, C, D, E], 3), n(F, 7), n(GS, 8), n(A, 9, 3), n(E, 12, 2)],
    (7, "major"): [n(G, 0, 2), n(B, 2), n(D + 12, 3, 2), n(FS, 5), n(G, 6, 2), n(A, 8), n(C, 9), n(D, 10, 2)],
}


@pytest.mark.parametrize("expected", KEYED)
def test_estimate_key_names_the_key(expected):
    assert stats.estimate_key(KEYED[expected]) == expected


@pytest.mark.parametrize("expected", KEYED)
def test_estimate_key_agrees_with_music21s_analysis(expected):
    s = stream.Stream()
    for note in KEYED[expected]:
        element = m21note.Note(note.pitch)
        element.quarterLength = note.duration
        s.insert(note.start, element)
    key = s.analyze("key")
    assert (key.tonic.pitchClass, key.mode) == stats.estimate_key(KEYED[expected])


def test_estimate_key_needs_notes_and_same_key_compares_tonic_and_mode():
    assert stats.estimate_key([]) is None
    c_major, a_minor, g_major = (KEYED[k] for k in ((0, "major"), (9, "minor"), (7, "major")))
    assert stats.same_key(c_major, [note._replace(pitch=note.pitch + 12) for note in c_major])
    assert not stats.same_key(c_major, g_major)
    assert not stats.same_key(c_major, a_minor)  # relative keys share a scale but not a key
    assert not stats.same_key([], c_major) and not stats.same_key(c_major, [])


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


def test_polyphony_averages_over_sounding_steps_only():
    notes = [n(C, 0), n(E, 0), n(G, 0.5)]  # sixteenths: 2, 2, 3, 3, 1, 1
    assert stats.polyphony(notes) == pytest.approx(12 / 6)
    assert stats.polyphony(notes + [n(A, 3)]) == pytest.approx(16 / 10)  # silent steps 6..11 left out
    assert stats.polyphony(notes, grid=2) == pytest.approx((2 + 3 + 1) / 3)
    assert math.isnan(stats.polyphony([]))


def test_empty_beat_rate():
    notes = [n(C, 0), n(E, 2, 0.5)]  # beats [0,1) and [2,3) sound, [1,2) is empty
    assert stats.empty_beat_rate(notes) == pytest.approx(1 / 3)
    assert stats.empty_beat_rate(notes, 0, 4) == pytest.approx(2 / 4)
    assert stats.empty_beat_rate([n(C, 0.5, 1)], 0, 2) == 0.0  # a note across a beat line fills both
    assert math.isnan(stats.empty_beat_rate([]))


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
    rows = stats.continuation_rows(two_pieces())
    model, bach, prompt = rows["model"], rows["Bach"], rows["prompt"]
    assert model["pc_distance"] == pytest.approx((0.5 + 1.0) / 2)
    assert math.isnan(bach["pc_distance"])
    assert prompt["pc_distance"] == pytest.approx((0.5 + 0.25) / 2)  # prompt C 1/2, E 1/4, G 1/4
    assert model["notes_per_quarter"] == pytest.approx((2 / 4 + 1 / 2) / 2)
    assert bach["notes_per_quarter"] == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert prompt["notes_per_quarter"] == pytest.approx(4 / 16)
    assert model["length"] == 3.0 and bach["length"] == 4.0 and prompt["length"] == 16.0
    assert model["length_vs_bach"] == (1 + 0.5) / 2 and bach["length_vs_bach"] == 1.0
    assert prompt["length_vs_bach"] == 4.0
    assert model["overlap"] == 0.0  # {C@16, G@18} vs {F#@16}
    assert bach["overlap"] == pytest.approx(1 / 2)  # {C@16} vs {C@16, G@18}
    assert math.isnan(prompt["overlap"]) and math.isnan(prompt["same_key"])
    assert model["voices"] == bach["voices"] == prompt["voices"] == 1.0
    assert model["pitch_range"] == pytest.approx((7 + 0) / 2)


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
    assert rows["other Bach"]["pc_distance"] == pytest.approx((0.5 + 0.5) / 2)  # {C, G} vs {C}, {C} vs {C, G}
    assert rows["other Bach"]["overlap"] == pytest.approx(1 / 2)


def test_format_table_shows_every_row_and_column():
    text = stats.format_table(stats.continuation_rows(two_pieces()))
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["model", "Bach", "other", "prompt"]
    assert lines[1].split()[1] == "0.750" and lines[2].split()[1] == "—" and lines[3].split()[2] == "0.500"
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
