"""Near-copies stay on one side of every split: on music21's real Bach chorales, and on MIDI files written here."""
from __future__ import annotations

import random
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from symusic import Note, Score, Track

from seqkit.config import DataConfig
from seqkit.music.corpus import bach_pieces, split_pieces
from seqkit.music.data import split_corpus, split_sequences
from seqkit.music.near_copies import near_copy_groups
from seqkit.music.tokenizer import MidiTokenizer

# The issue's three leaks: the same harmonization in another version or key.
KNOWN_PAIRS = [("bwv20.11", "bwv20.7"), ("bwv244.15", "bwv244.17"), ("bwv18.5-lz", "bwv18.5-w")]
STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def xml_parts(path: str) -> list[list[int]]:
    """Each part's pitches, read with a real XML parser (not seqkit's reader)."""
    if not path.endswith(".mxl"):
        root = ET.parse(path).getroot()
    else:
        with zipfile.ZipFile(path) as archive:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            name = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
            root = ET.fromstring(archive.read(name))
    parts = []
    for part in root.iter("part"):
        pitches = []
        for pitch in part.iter("pitch"):
            alter = pitch.findtext("alter")
            pitches.append(STEPS[pitch.findtext("step")] + round(float(alter or 0)) + 12 * int(pitch.findtext("octave")))
        parts.append(pitches)
    return parts


def runs_of_8(pitches: list[int]) -> set:
    moves = [b - a for a, b in zip(pitches, pitches[1:]) if b != a]  # repeated notes are not moves
    return {tuple(moves[i:i + 8]) for i in range(len(moves) - 7)}


def most_shared(held_out: list[set], train_piece: list[set]) -> float:
    """The largest share of one held-out part's runs found anywhere in the training piece."""
    found = set().union(*train_piece)
    return max((len(runs & found) / len(runs) for runs in held_out if runs), default=0.0)


@pytest.fixture(scope="module")
def chorales():
    pieces = bach_pieces()
    return pieces, {Path(p).stem: p for p in pieces}


def test_the_issue_pairs_are_grouped_and_groups_stay_small(chorales, tmp_path):
    pieces, by_name = chorales
    groups = near_copy_groups(pieces, tmp_path)
    group_of = {piece: tuple(group) for group in groups for piece in group}
    for a, b in KNOWN_PAIRS:
        assert group_of[by_name[a]] == group_of[by_name[b]], (a, b)
    # the largest group: settings of one chorale tune (the Passion chorale); see bench/near_copies.py
    assert max(map(len, groups)) <= 10
    assert sum(len(group) > 1 for group in groups) < 80


def test_no_held_out_chorale_has_a_near_copy_in_training(chorales, tmp_path):
    pieces, _ = chorales
    split = split_corpus(pieces, DataConfig(source="bach", cache_dir=str(tmp_path)))
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (291, 36, 36)
    runs = {p: [runs_of_8(part) for part in xml_parts(p)] for p in pieces}
    for name in ("val", "test"):
        for held_out in split[name]:
            closest = max(most_shared(runs[held_out], runs[train]) for train in split["train"])
            assert closest < 0.4, (name, held_out, closest)


def test_a_plain_shuffle_of_the_chorales_leaks(chorales):
    """What the grouping fixes: the old split held a near-copy of bwv20.11 in training."""
    pieces, by_name = chorales
    split = split_pieces(pieces, seed=0)
    assert by_name["bwv20.11"] in split["test"] and by_name["bwv20.7"] in split["train"]


def test_groups_stay_on_one_side_whatever_the_seed():
    pieces = [f"p{i:02}.mid" for i in range(40)]
    groups = [pieces[0:5], pieces[10:13], [pieces[20], pieces[39]]]
    for seed in range(30):
        split = split_pieces(pieces, seed=seed, groups=groups)
        assert sorted(sum(split.values(), [])) == sorted(pieces)
        side = {piece: name for name, names in split.items() for piece in names}
        for group in groups:
            assert len({side[piece] for piece in group}) == 1
        assert len(split["val"]) == len(split["test"]) == 4
    assert split_pieces(list(reversed(pieces)), seed=3, groups=[list(reversed(g)) for g in groups]) == \
        split_pieces(pieces, seed=3, groups=groups)


def write_song(path: Path, pitches: list[int], durations: list[int], drums: bool = False) -> None:
    score = Score(480)
    track = Track("melody", program=0)
    time = 0
    for pitch, duration in zip(pitches, durations):
        track.notes.append(Note(time, duration, pitch, 80))
        time += duration
    score.tracks.append(track)
    if drums:
        kit = Track("drums", program=0, is_drum=True)
        for beat in range(0, time, 480):
            kit.notes.append(Note(beat, 120, 36 + beat // 480 % 3, 100))
        score.tracks.append(kit)
    score.dump_midi(str(path))


def test_a_transposed_reworded_copy_of_a_midi_song_is_held_out_with_it(tmp_path):
    rng = random.Random(1)
    folder = tmp_path / "songs"
    folder.mkdir()
    tune = [60 + rng.choice([-5, -3, -1, 0, 2, 4, 5, 7]) for _ in range(40)]
    names = [f"song{i}.mid" for i in range(10)]
    for name in names:
        write_song(folder / name, [48 + rng.randrange(24) for _ in range(40)], [240] * 40)
    # song3 and song8: one tune, the copy a fourth higher, in other note lengths and with drums
    write_song(folder / "song3.mid", tune, [240] * 40)
    write_song(folder / "song8.mid", [p + 5 for p in tune], [480, 240] * 20, drums=True)
    copies = {str(folder / "song3.mid"), str(folder / "song8.mid")}
    cfg = DataConfig(source=str(folder), tokenizer="midi", cache_dir=str(tmp_path / "cache"), workers=1)
    assert [group for group in near_copy_groups(sorted(map(str, folder.iterdir()))) if len(group) > 1] == [sorted(copies)]
    plain = split_pieces(sorted(str(p) for p in folder.iterdir()), seed=0, val=0.1, test=0.1)
    assert len({name for name, pieces in plain.items() if copies & set(pieces)}) == 2  # a plain shuffle splits them
    splits = split_sequences(cfg, MidiTokenizer(), progress=False)
    assert len({name for name, pieces in splits.items() if copies & set(pieces)}) == 1
