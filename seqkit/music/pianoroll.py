"""Piano-roll pictures of note lists: time in quarter notes across, pitch up, one rectangle per note."""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seqkit.io import atomic_path

PROMPT, PREDICTION, TRUTH = "#9a9a9a", "#f28e2b", "#4e79a7"


def plot_pianoroll(path_png, tracks, title: str | None = None) -> None:
    """Draw [(label, notes, colour)] on one piano roll and save it as a PNG."""
    figure = _figure(rows=1)
    _draw(figure.axes[0], tracks)
    if title:
        figure.axes[0].set_title(title)
    _save(figure, path_png)


def plot_comparison(path_png, prompt, prediction, truth, title: str | None = None) -> None:
    """Two rolls sharing the time axis: the prompt and the model's continuation on top, the prompt and the
    true continuation below, with a line where the prompt ends."""
    figure = _figure(rows=2)
    top, bottom = figure.axes
    _draw(top, [("prompt", prompt, PROMPT), ("prediction", prediction, PREDICTION)])
    _draw(bottom, [("prompt", prompt, PROMPT), ("truth", truth, TRUTH)])
    prompt_end = max((note.start + note.duration for note in prompt), default=0.0)
    for axes in (top, bottom):
        axes.axvline(prompt_end, color="black", linewidth=1, linestyle="--")
    bottom.set_xlabel("time (quarter notes)")
    top.set_xlabel("")
    if title:
        top.set_title(title)
    _save(figure, path_png)


def _figure(rows: int) -> Figure:
    figure = Figure(figsize=(12, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg whatever backend pyplot may have chosen
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.set_xlabel("time (quarter notes)")
        ax.set_ylabel("pitch (MIDI)")
        ax.grid(axis="x", alpha=0.3)
    return figure


def _draw(axes, tracks) -> None:
    for label, notes, colour in tracks:
        notes = list(notes)
        axes.bar([n.start for n in notes], 0.8, width=[n.duration for n in notes],
                 bottom=[n.pitch - 0.4 for n in notes], align="edge", color=colour,
                 edgecolor="black", linewidth=0.3, label=f"{label} ({len(notes)} notes)")
    if any(len(notes) for _, notes, _ in tracks):
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")  # outside: never hides notes


def _save(figure: Figure, path_png) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    with atomic_path(path_png) as tmp:
        tmp.write_bytes(buffer.getvalue())
