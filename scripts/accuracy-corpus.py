#!/usr/bin/env python3
"""Generates the evaluation corpus of `atlas bench accuracy` (standard library only).

Reads bench/accuracy/phrasings.txt (the utterances, their class and the workflow and slots they
must give) and the English voices espeak-ng has, and writes one manifest: every expanded
utterance rendered several times, each rendering with its own voice, speed and noise condition,
plus silence and noise-only clips. Voices are spread round-robin so every English voice is used;
voices espeak-ng cannot render here (MBROLA ones without their data) are listed as skipped.

The manifest goes to OUT/<hash>/corpus.json, where <hash> covers this script, the phrasings, the
benchmark workflows and the voice list: an edit to any of them is a new corpus, and WAVs rendered
for an older one are never reused. The path is printed on stdout. The WAVs themselves are rendered
(and cached beside the manifest) by the benchmark, for the utterances it samples.

Usage: scripts/accuracy-corpus.py [--corpus bench/accuracy] [--out ~/.cache/atlas/accuracy]
                                  [--renderings 3]
"""

import argparse
import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile

SPEEDS = [130, 160, 190]
# espeak-ng variants layered on the voices, for more timbres (female ones among them).
VARIANTS = ["", "+f3", "+m3", "+f2", "+m6"]
# Noise conditions: clean speech a third of the time, pink and white noise at 20, 10 and 5 dB SNR.
CONDITIONS = [("clean", None)] * 3 + [
    (color, snr) for snr in (20, 10, 5) for color in ("pink", "white")
]
# Audio without speech: silence and noise at a few levels (dBFS RMS), a few lengths each.
NO_SPEECH = [("silence", None)] + [(c, lvl) for c in ("white", "pink") for lvl in (-50, -40, -30)]
CLASSES = {"in": "in_grammar", "para": "paraphrase", "off": "off_topic", "ask": "question"}


def parse_phrasings(path):
    """The lines of phrasings.txt, expanded: one entry per combination of slot values."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) != 4 or parts[0] not in CLASSES:
                sys.exit(f"{path}:{number}: expected CLASS | WORKFLOW | SLOTS | TEXT")
            cls, workflow, slots, text = parts
            names, choices = [], []
            if slots != "-":
                for spec in slots.split(";"):
                    name, _, values = spec.partition("=")
                    names.append(name.strip())
                    choices.append([v.strip() for v in values.split(",")])
            for combo in itertools.product(*choices):
                spoken = text
                expect = {}
                for name, value in zip(names, combo):
                    if "{" + name + "}" not in spoken:
                        sys.exit(f"{path}:{number}: slot {name} is not in the text")
                    spoken = spoken.replace("{" + name + "}", value)
                    expect[name] = int(value) if value.isdigit() else value
                entries.append({
                    "class": CLASSES[cls],
                    "text": spoken,
                    "workflow": None if workflow == "-" else workflow,
                    "slots": expect,
                    "line": number,
                })
    return entries


def english_voices():
    """espeak-ng's English voices as `-v` names, and those it cannot render here."""
    out = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True,
                         check=True).stdout
    names = []
    for row in out.splitlines()[1:]:
        cols = row.split()
        if len(cols) < 5:
            continue
        language, file = cols[1], cols[4]
        # A variant listed under English ("!v/Storm") is layered on the American voice.
        names.append(f"en-us+{file[3:]}" if file.startswith("!v/") else file)
    usable, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "probe.wav")
        for name in dict.fromkeys(names):
            r = subprocess.run(["espeak-ng", "-v", name, "-w", probe, "hello"],
                               capture_output=True, text=True)
            ok = r.returncode == 0 and os.path.exists(probe) and os.path.getsize(probe) > 1000
            (usable if ok else skipped).append(
                name if ok else {"voice": name, "why": (r.stderr.strip() or "no audio")[:120]})
            if os.path.exists(probe):
                os.remove(probe)
    return usable, skipped


def corpus_hash(paths, voices, renderings):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(p.encode() + b"\0" + f.read() + b"\0")
    h.update(json.dumps([voices, renderings, SPEEDS, VARIANTS, CONDITIONS, NO_SPEECH]).encode())
    return h.hexdigest()[:16]


def build(entries, voices, renderings):
    """Every entry `renderings` times, voices round-robin, speeds and noise drawn (seeded)."""
    rng = random.Random(20240917)
    items = []
    n = 0
    for e in entries:
        for r in range(renderings):
            voice = voices[n % len(voices)]
            if "+" not in voice:
                voice += VARIANTS[(n // len(voices)) % len(VARIANTS)]
            noise, snr = CONDITIONS[rng.randrange(len(CONDITIONS))]
            items.append({
                "id": f"s{n:05d}",
                "class": e["class"],
                "text": e["text"],
                "voice": voice,
                "speed": rng.choice(SPEEDS),
                "noise": noise,
                "snr_db": snr,
                "expect": {"workflow": e["workflow"], "slots": e["slots"]},
                "line": e["line"],
            })
            n += 1
    for i, (noise, level) in enumerate(NO_SPEECH * 4):
        items.append({
            "id": f"n{i:03d}",
            "class": "silence_noise",
            "text": "",
            "noise": noise,
            "level_dbfs": level,
            "seconds": [1.0, 2.0, 3.0, 5.0][i // len(NO_SPEECH)],
            "expect": {"workflow": None, "slots": {}},
        })
    # One order for all: a sample is a prefix of each class.
    rng.shuffle(items)
    return items


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.path.join(root, "bench", "accuracy"))
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/atlas/accuracy"))
    ap.add_argument("--renderings", type=int, default=3)
    args = ap.parse_args()
    phrasings = os.path.join(args.corpus, "phrasings.txt")
    wf_dir = os.path.join(args.corpus, "workflows")
    workflows = sorted(os.path.join(wf_dir, f) for f in os.listdir(wf_dir) if f.endswith(".yaml"))
    voices, skipped = english_voices()
    if not voices:
        sys.exit("espeak-ng renders none of its English voices")
    key = corpus_hash([os.path.abspath(__file__), phrasings] + workflows, voices,
                      args.renderings)
    out_dir = os.path.join(args.out, key)
    manifest = os.path.join(out_dir, "corpus.json")
    if not os.path.exists(manifest):
        os.makedirs(out_dir, exist_ok=True)
        entries = parse_phrasings(phrasings)
        doc = {
            "hash": key,
            "voices": voices,
            "voices_skipped": skipped,
            "speeds": SPEEDS,
            "renderings": args.renderings,
            "phrasings": len(entries),
            "items": build(entries, voices, args.renderings),
        }
        tmp = manifest + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, manifest)
    print(manifest)


if __name__ == "__main__":
    main()
