#!/usr/bin/env python3
"""Tokenizer encode-speed benchmark, Hugging Face side (a benchmark, not a test).

Builds a deterministic ~10 MB mixed corpus (Python standard-library source for English + code,
pseudo-random Chinese / Japanese / Korean / Arabic / Cyrillic / emoji text, numbers and URLs), then
measures HF `tokenizers` single-threaded: one encode() of the whole text and encode_batch() of its
lines with parallelism off. Compare with nibble's tokenizer_bench on the same file:

    /root/.venvs/nibble/bin/python tests/conformance/bench_tokenizer_hf.py /tmp/corpus.txt \
        ../shared/tokenizers/qwen3
    build/dev/src/tokenizer/tokenizer_bench ../shared/tokenizers/qwen3 /tmp/corpus.txt
"""
import os
import random
import sys
import sysconfig
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

from tokenizers import Tokenizer  # noqa: E402

TARGET_BYTES = 10_000_000


def make_corpus(path):
    rng = random.Random(7)
    parts = []
    size = 0
    stdlib = sysconfig.get_paths()["stdlib"]
    files = []
    for root, _, names in os.walk(stdlib):
        if "site-packages" in root or "test" in root:
            continue
        files += [os.path.join(root, n) for n in names if n.endswith(".py")]
    files.sort()
    rng.shuffle(files)
    for f in files:  # ~60%: English comments/docstrings and code with indentation
        if size > TARGET_BYTES * 0.6:
            break
        try:
            text = open(f, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        size += len(text.encode())
    scripts = [(0x4E00, 0x62FF, 0.5), (0x3041, 0x30FA, 0.15), (0xAC00, 0xB7FF, 0.15), (0x0621, 0x064A, 0.1),
               (0x0410, 0x044F, 0.1)]
    emoji = ["😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "❤️", "🎉", "🚀"]
    while size < TARGET_BYTES * 0.95:
        lo, hi, _ = rng.choices(scripts, weights=[s[2] for s in scripts])[0]
        words = []
        for _ in range(rng.randint(5, 30)):
            words.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
        line = (" " if lo < 0x3000 else "").join(words)
        if rng.random() < 0.2:
            line += " " + rng.choice(emoji)
        if rng.random() < 0.2:
            line += " %d.%d https://example.com/p/%d?q=%d" % (rng.randint(0, 10 ** 6), rng.randint(0, 99),
                                                             rng.randint(0, 999), rng.randint(0, 10 ** 9))
        line += "。\n" if lo >= 0x3000 else ".\n"
        parts.append(line)
        size += len(line.encode())
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    path, tok_dir = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    if not os.path.exists(path):
        make_corpus(path)
    text = open(path, encoding="utf-8").read()
    mb = len(text.encode()) / 1e6
    tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    lines = text.splitlines(keepends=True)
    best_whole = best_lines = 1e30
    n = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = len(tok.encode(text, add_special_tokens=False).ids)
        best_whole = min(best_whole, time.perf_counter() - t0)
        t0 = time.perf_counter()
        tok.encode_batch(lines, add_special_tokens=False)
        best_lines = min(best_lines, time.perf_counter() - t0)
    print("HF tokenizers %s: %.2f MB, %d tokens; whole text %.2f MB/s; per line (%d lines, encode_batch, 1 thread) "
          "%.2f MB/s" % (tok_dir, mb, n, mb / best_whole, len(lines), mb / best_lines))


if __name__ == "__main__":
    main()
