"""What `seqkit.music.near_copies` groups in music21's Bach chorales, and why its threshold sits where it does:
for each share of one part's runs of 8 intervals found in another piece, how many pairs reach it and how
large the groups grow (groups chain: at 0.3 settings of different tunes start to merge), then every group
at the threshold seqkit uses. `python bench/near_copies.py` (~2 s)."""
from __future__ import annotations

from pathlib import Path

from seqkit.music.corpus import bach_pieces, split_pieces
from seqkit.music.near_copies import RUN, SHARED, interval_runs, musicxml_part_pitches, near_copy_groups, shared_runs


def main() -> None:
    pieces = bach_pieces()
    runs = {p: [r for r in map(interval_runs, musicxml_part_pitches(Path(p))) if r] for p in pieces}
    shares = shared_runs(runs)
    pair_share = {}
    for (a, b), share in shares.items():
        key = tuple(sorted((a, b)))
        pair_share[key] = max(pair_share.get(key, 0.0), share)
    name = lambda piece: Path(piece).stem  # noqa: E731
    print(f"# Near-copies among music21's {len(pieces)} Bach chorales (runs of {RUN} intervals)\n")
    print("| shared runs at least | pairs | groups of 2+ | pieces in them | largest groups |")
    print("|---|---|---|---|---|")
    for threshold in (0.9, 0.7, 0.5, 0.45, SHARED, 0.35, 0.3):
        groups = [g for g in near_copy_groups(pieces, shared=threshold) if len(g) > 1]
        sizes = sorted(map(len, groups), reverse=True)
        mark = " (seqkit)" if threshold == SHARED else ""
        print(f"| {threshold}{mark} | {sum(s >= threshold for s in pair_share.values())} | {len(groups)} | "
              f"{sum(sizes)} | {', '.join(map(str, sizes[:5]))} |")
    groups = [g for g in near_copy_groups(pieces) if len(g) > 1]
    print(f"\n## The {len(groups)} groups at {SHARED} (closest pair's share)\n")
    for group in sorted(groups, key=len, reverse=True):
        closest = max(pair_share.get(tuple(sorted((a, b))), 0.0) for a in group for b in group if a != b)
        print(f"- {len(group)} ({closest:.2f}): {' '.join(map(name, group))}")
    band = sorted(((s, pair) for pair, s in pair_share.items() if 0.3 <= s < SHARED), reverse=True)[:12]
    print(f"\n## The closest pairs left apart (shares in [0.3, {SHARED}))\n")
    for share, (a, b) in band:
        print(f"- {share:.2f}: {name(a)} ~ {name(b)}")
    split = split_pieces(pieces, seed=0)
    leaks = [(name(t), name(max(split["train"], key=lambda p: pair_share.get(tuple(sorted((t, p))), 0.0))))
             for t in split["test"]
             if max(pair_share.get(tuple(sorted((t, p))), 0.0) for p in split["train"]) >= SHARED]
    print(f"\nA plain shuffle of the pieces (seed 0, before grouping) held out {len(leaks)} test chorales with a "
          f"near-copy in training: {', '.join(f'{a} ~ {b}' for a, b in leaks)}")


if __name__ == "__main__":
    main()
