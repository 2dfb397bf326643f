"""A CLIP tokenizer whose vocabulary is the shapes world's words: each word is one token.

The merges are learned by byte-pair encoding over the word list itself, so applying them in rank order rebuilds
every word exactly (hand-written per-word merge chains collide: "r i" from "right" would block "t r" in
"triangle")."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from adq.method.models.tiny import _bytes_to_unicode

MAX_LENGTH = 24


def learn_merges(words: list[str]) -> list[tuple[str, str]]:
    corpus = [tuple(list(w[:-1]) + [w[-1] + "</w>"]) for w in words]
    merges = []
    while any(len(w) > 1 for w in corpus):
        pairs = Counter(p for w in corpus for p in zip(w, w[1:]))
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = []
        for w in corpus:
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged.append(tuple(out))
        corpus = merged
    return merges


def build(folder: Path, words: list[str]):
    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    merges = learn_merges(words)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # highest id: CLIP pools at argmax(input_ids)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=MAX_LENGTH)
    tok.save_pretrained(folder)
    return tok
