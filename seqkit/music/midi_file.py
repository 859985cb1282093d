"""Standard MIDI files ↔ NoteList: reading with symusic (the C++ reader MidiTok uses), writing with music21.

symusic pairs each note-off with the oldest sounding note of its channel and pitch in its MIDI track
(a note-on with velocity 0 is a note-off), gives a note the program its channel had at its note-on, and
drops notes never switched off. Drum-channel notes are skipped and counted (`NoteList.drum_notes`).
"""
from __future__ import annotations

import numpy as np

from seqkit.music.notes import NoteArrays, NoteList, changes_only

DRUM_CHANNEL = 10  # General MIDI percussion (1-based): its "pitches" choose drum sounds
CHANNELS = [c for c in range(1, 17) if c != DRUM_CHANNEL]


def read_midi(data: bytes) -> NoteList:
    """Notes of a MIDI file's bytes, sorted as `sort_notes` sorts them; drum-channel notes are skipped and
    counted in `.drum_notes`. Raises ValueError for SMPTE timing, RuntimeError for malformed data."""
    return read_midi_arrays(data).note_list()


def read_midi_arrays(data: bytes) -> NoteArrays:
    """`read_midi` as arrays (notes in no particular order), for the tokenizer: no Python object per note."""
    from symusic import Score

    if data[:4] == b"MThd" and len(data) >= 14 and data[12] & 0x80:  # negative division: frames, not beats
        raise ValueError("SMPTE-timed MIDI files are not supported")
    score = Score.from_midi(data)
    quarter = score.ticks_per_quarter
    fields, drum_notes = ([], [], [], [], []), 0  # pitch, onset tick, length in ticks, velocity, program
    for track in score.tracks:
        if track.is_drum:
            drum_notes += track.note_num()
        elif track.note_num():
            notes = track.notes.numpy()
            for field, values in zip(fields, (notes["pitch"], notes["time"], notes["duration"], notes["velocity"],
                                              np.full(len(notes["time"]), track.program))):
                field.append(values)
    pitch, onset, length, velocity, program = (np.concatenate([*field, np.zeros(0, np.int64)]) for field in fields)
    tempos = score.tempos.numpy()
    tempos = [(tick / quarter, round(60_000_000 / mspq, 2))
              for tick, mspq in zip(tempos["time"].tolist(), tempos["mspq"].tolist())]
    meters = score.time_signatures.numpy()
    meters = [(tick / quarter, numerator, denominator) for tick, numerator, denominator in zip(
        meters["time"].tolist(), meters["numerator"].tolist(), meters["denominator"].tolist())]
    return NoteArrays(pitch, onset / quarter, length / quarter, velocity, program,
                      changes_only(meters), changes_only(tempos), drum_notes)


def midi_bytes(notes: NoteList, ticks_per_quarter: int) -> bytes:
    """A format-1 MIDI file: a conductor track (tempos, time signatures), then one track per program."""
    from music21 import midi

    ticks = lambda quarters: round(quarters * ticks_per_quarter)  # noqa: E731
    conductor = [(ticks(start), midi.MetaEvents.TIME_SIGNATURE, bytes([num, den.bit_length() - 1, 24, 8]))
                 for start, num, den in getattr(notes, "time_signatures", [])]
    conductor += [(ticks(start), midi.MetaEvents.SET_TEMPO, round(60_000_000 / bpm).to_bytes(3, "big"))
                  for start, bpm in getattr(notes, "tempos", [])]
    midi_file = midi.MidiFile()
    midi_file.ticksPerQuarterNote = ticks_per_quarter
    midi_file.tracks.append(_track(0, conductor, channel=1))
    programs = sorted({note.program for note in notes})
    for index, program in enumerate(programs, start=1):
        events = [(0, midi.ChannelVoiceMessages.PROGRAM_CHANGE, program)]
        for note in notes:
            if note.program == program:
                velocity = min(127, max(1, note.velocity))  # velocity 0 would mean note-off
                events.append((ticks(note.start), midi.ChannelVoiceMessages.NOTE_ON, (note.pitch, velocity)))
                events.append((ticks(note.start + note.duration), midi.ChannelVoiceMessages.NOTE_OFF,
                               (note.pitch, 0)))
        midi_file.tracks.append(_track(index, events, CHANNELS[(index - 1) % len(CHANNELS)]))
    return midi_file.writestr()


def _track(index: int, events: list[tuple], channel: int):
    """A track from (tick, type, data) events: data is (pitch, velocity) for notes, else bytes/int."""
    from music21 import midi

    track = midi.MidiTrack(index)
    tick = 0
    note_off_first = {midi.ChannelVoiceMessages.NOTE_OFF: 0}  # at one tick: end a note before one starts
    for at, kind, data in sorted(events, key=lambda e: (e[0], note_off_first.get(e[1], 1))):
        track.events.append(midi.DeltaTime(track, time=at - tick))
        event = midi.MidiEvent(track, type=kind, channel=channel)
        if isinstance(data, tuple):
            event.pitch, event.velocity = data
        else:
            event.data = data
        track.events.append(event)
        tick = at
    track.events.append(midi.DeltaTime(track, time=0))
    track.events.append(midi.MidiEvent(track, type=midi.MetaEvents.END_OF_TRACK, channel=channel))
    track.events[-1].data = b""
    return track
