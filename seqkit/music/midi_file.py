"""Standard MIDI files ↔ NoteList with music21's low-level `midi` module.

music21's `converter.parse` builds a full score and is ~25x slower; here we walk the track events
ourselves: pair note-ons with note-offs, follow program changes, collect tempos and time signatures.
"""
from __future__ import annotations

from collections import defaultdict, deque

from music21 import midi

from seqkit.music.notes import Note, NoteList, changes_only, sort_notes

DRUM_CHANNEL = 10  # General MIDI percussion (1-based): its "pitches" choose drum sounds
CHANNELS = [c for c in range(1, 17) if c != DRUM_CHANNEL]
NOTE_OFF_FIRST = {midi.ChannelVoiceMessages.NOTE_OFF: 0}  # at one tick: end a note before one starts


def read_midi(data: bytes) -> NoteList:
    """Notes of a MIDI file's bytes; drum-channel notes are skipped. Raises on malformed data."""
    midi_file = midi.MidiFile()
    midi_file.readstr(data)
    if midi_file.ticksPerSecond:
        raise ValueError("SMPTE-timed MIDI files are not supported")
    quarter = float(midi_file.ticksPerQuarterNote)
    notes, time_signatures, tempos = [], [], []
    for track in midi_file.tracks:
        tick = 0
        programs = defaultdict(int)      # channel → program
        sounding = defaultdict(deque)    # (channel, pitch) → [(onset tick, velocity, program)]
        for event in track.events:
            if event.isDeltaTime():
                tick += event.time
            elif event.channel == DRUM_CHANNEL and event.isChannelEvent():
                continue
            elif event.isNoteOn():
                sounding[event.channel, event.pitch].append((tick, event.velocity, programs[event.channel]))
            elif event.isNoteOff() and sounding[event.channel, event.pitch]:
                onset, velocity, program = sounding[event.channel, event.pitch].popleft()
                notes.append(Note(event.pitch, onset / quarter, (tick - onset) / quarter, velocity, program))
            elif event.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
                programs[event.channel] = event.data
            elif event.type == midi.MetaEvents.SET_TEMPO:
                tempos.append((tick / quarter, round(60_000_000 / int.from_bytes(event.data, "big"), 2)))
            elif event.type == midi.MetaEvents.TIME_SIGNATURE:
                time_signatures.append((tick / quarter, event.data[0], 2 ** event.data[1]))
        for (channel, pitch), onsets in sounding.items():  # never switched off: end with the track
            notes.extend(Note(pitch, onset / quarter, (tick - onset) / quarter, velocity, program)
                         for onset, velocity, program in onsets)
    return NoteList(sort_notes(notes), changes_only(time_signatures), changes_only(tempos))


def midi_bytes(notes: NoteList, ticks_per_quarter: int) -> bytes:
    """A format-1 MIDI file: a conductor track (tempos, time signatures), then one track per program."""
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


def _track(index: int, events: list[tuple], channel: int) -> midi.MidiTrack:
    """A track from (tick, type, data) events: data is (pitch, velocity) for notes, else bytes/int."""
    track = midi.MidiTrack(index)
    tick = 0
    for at, kind, data in sorted(events, key=lambda e: (e[0], NOTE_OFF_FIRST.get(e[1], 1))):
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
