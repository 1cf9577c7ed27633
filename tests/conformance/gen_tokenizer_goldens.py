#!/usr/bin/env python3
"""Writes tokenizer goldens from Hugging Face `tokenizers` (and checks `transformers` agrees).

For every tokenizer in ../shared/tokenizers/* and three synthetic ones built here with the
`tokenizers` package (a Llama-2-style SentencePiece BPE with Prepend/Replace normalizers and a
ByteFallback/Fuse/Strip decoder, a Metaspace BPE with NFKC and single_word/lstrip/rstrip added
tokens, and a GPT-2-style ByteLevel BPE with Digits/Punctuation pre-tokenizers and "a b" merges),
it records for a fixed corpus: ids with and without special tokens, the decoded text with and
without skip_special_tokens, whether decode(encode(x)) == x, the DecodeStream deltas, and the
decode of random id sequences.

Regenerate (from the repository root):
    /root/.venvs/nibble/bin/python tests/conformance/gen_tokenizer_goldens.py
With --normalizer-table it instead prints the Unicode tables in src/tokenizer/normalizer.cpp and
src/tokenizer/unicode.cpp (where tokenizers' own Unicode data is older than utf8proc's).
Outputs: tests/golden/tokenizers/<name>.json and tests/golden/tokenizers/synthetic/<name>/.
The synthetic tokenizers are trained only when missing or with --retrain (training is not
bit-reproducible, so a retrain changes their ids).
"""
import json
import os
import random
import sys
import unicodedata

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken
from tokenizers.decoders import DecodeStream

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "tokenizers")
OUT = os.path.join(ROOT, "tests", "golden", "tokenizers")


def corpus():
    texts = [
        "",
        " ",
        "Hello world",
        "Hello, world! How's it going? I'm fine, they'll say; we've done it, you'd think.",
        "HELLO World THE END Don'T SHOUT",
        "The quick brown fox jumps over the lazy dog.",
        "  leading spaces and trailing spaces   ",
        "line one\nline two\r\nline three\n\n\nafter blank lines\n",
        "DGX Spark 有 128GB 統一記憶體",
        "我们今天去公园散步，天气非常好。",
        "我們今天去公園散步，天氣非常好。",
        "日本語のテキストです。カタカナとひらがな、そして漢字。",
        "한국어 텍스트입니다. 안녕하세요!",
        "مرحبا بالعالم، هذا نص عربي.",
        "Здравствуй, мир! Ελληνικά κείμενα.",
        "नमस्ते दुनिया",
        "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸🇩🇪 ❤️ 🧑🏿‍💻",
        "def f(x):\n\treturn x * 2\n\n\tif x:\n\t\tpass\n",
        "int main() {\n    printf(\"%d\\n\", 42);\n        return 0;\n}\n",
        "x" + " " * 40 + "y",
        "a\t\t\tb\t \t c",
        " " * 100,
        "\n" * 20,
        "https://example.com/path/to/page?query=1&x=y#frag and http://foo.bar/baz.html",
        "user@example.com, C:\\Windows\\System32, /usr/local/bin",
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        "text with <|im_start|> inside and <|endoftext|> too",
        "<|endoftext|><|endoftext|>",
        "<think>\nreasoning\n</think>\n\nanswer",
        "<|start|>assistant<|channel|>final<|message|>hi<|return|>",
        "<｜begin▁of▁sentence｜>Hi<｜User｜>Q<｜Assistant｜>A<｜end▁of▁sentence｜>",
        "<s>hello</s> <unk> [MASK] mask [MASK]x x[MASK] <tool> call </tool>",
        "Pi is 3.14159265358979 and e is 2.71828; 1,000,000 vs 1.000.000; -42; +7; 1e10",
        "ﬁ ﬂ ℌ ① ² Ａ Ｂ Ｃ ｶﾀｶﾅ ㍿",
        "café vs cafe\u0301, Å vs A\u030a, 한 vs \u1112\u1161\u11ab",
        "tab\tsep\tvalues\n1\t2\t3",
        "\u00a0non-breaking\u2003em space\u3000ideographic space\u200bzero width",
        "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
        "Mixed: English 中文 日本語 한국어 العربية 🙂 123",
        "<|im_start|",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" * 3,
        "ab" * 200,
        "!!!???...,,,;;;:::---___===+++***",
        "\u0000\u0001\u0007\u001b[0m control \u007f",
        "next\u0085line x\u0085\u0085 y\u000b\u000cz \u2028\u2029 \r\r\n\r end",
        "mongolian\u180evowel \u180e<s> \u180e  x\u1680y\u202fz\ufeff",
        "newer Unicode: a\u1df9\uaaf6b \U0001fbf9 \u32ff \u2e5d x\u2e5dy \U0001079a e\u0301\u1df9",
    ]
    for n in range(1, 41):
        texts.append("".join(str((i * 7 + 3) % 10) for i in range(n)))
    texts.append(" ".join(str(10 ** k) for k in range(0, 25)))
    rng = random.Random(1234)
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F),
              (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1F64F), (0x2000, 0x206F),
              (0x300, 0x36F), (0x1F900, 0x1F9FF)]
    for _ in range(30):
        chars = []
        while len(chars) < rng.randint(1, 40):
            lo, hi = rng.choice(ranges)
            c = chr(rng.randint(lo, hi))
            if unicodedata.category(c) in ("Cn", "Cs", "Co"):
                continue
            chars.append(c)
        texts.append("".join(chars))
    return texts


def train_text():
    base = corpus()
    extra = [
        "the cat sat on the mat and the dog sat on the log",
        "tokenizers split text into pieces and merge frequent pairs",
        "hello world hello there general kenobi",
    ] * 20
    return base + extra


def renumber(tok_json, front):
    """Puts `front` tokens first (ids 0..), shifting the trained vocabulary after them."""
    vocab = tok_json["model"]["vocab"]
    order = sorted(vocab.items(), key=lambda kv: kv[1])
    new = {}
    for t in front:
        new[t] = len(new)
    for t, _ in order:
        if t not in new:
            new[t] = len(new)
    tok_json["model"]["vocab"] = new
    return new


def build_llama2_legacy():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=700, limit_alphabet=80, special_tokens=[], show_progress=False)
    tok.train_from_iterator(train_text(), trainer)
    j = json.loads(tok.to_str())
    front = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    vocab = renumber(j, front)
    j["added_tokens"] = []
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_special_tokens([AddedToken("<unk>", special=True, normalized=False),
                            AddedToken("<s>", special=True, normalized=False),
                            AddedToken("</s>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("<tool>", lstrip=True, rstrip=True, normalized=False),
                    AddedToken("</tool>", normalized=True)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True}
    return tok, config


def build_metaspace():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=900, limit_alphabet=120, special_tokens=[], show_progress=False)
    tok.train_from_iterator(train_text(), trainer)
    j = json.loads(tok.to_str())
    front = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    vocab = renumber(j, front)
    j["added_tokens"] = []
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_special_tokens([AddedToken("<unk>", special=True, normalized=False),
                            AddedToken("<s>", special=True, normalized=False),
                            AddedToken("</s>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("[MASK]", single_word=True, normalized=False),
                    AddedToken("<tool>", lstrip=True, normalized=True),
                    AddedToken("</tool>", rstrip=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])])
    config = {"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>"}
    return tok, config


def build_bytelevel_digits():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation(behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(train_text(), trainer)
    config = {"eos_token": "<|endoftext|>", "bos_token": None}
    return tok, config


def stream_deltas(tok, ids, skip):
    ds = DecodeStream(skip_special_tokens=skip)
    out = []
    for i in ids:
        try:
            d = ds.step(tok, i)
        except Exception:  # DecodeStream's InvalidPrefix: no golden for this sequence
            return None
        out.append(d if d is not None else "")
    return out


def golden_for(name, tok, source, check_transformers_dir=None):
    auto = None
    if check_transformers_dir is not None:
        from transformers import AutoTokenizer
        auto = AutoTokenizer.from_pretrained(check_transformers_dir)
    cases = []
    for text in corpus():
        enc = tok.encode(text, add_special_tokens=True).ids
        enc_ns = tok.encode(text, add_special_tokens=False).ids
        dec = tok.decode(enc_ns, skip_special_tokens=False)
        dec_skip = tok.decode(enc, skip_special_tokens=True)
        if auto is not None:
            assert auto(text)["input_ids"] == enc, (name, text)
            assert auto(text, add_special_tokens=False)["input_ids"] == enc_ns, (name, text)
            assert auto.decode(enc_ns) == dec, (name, text)
        case = {"text": text, "ids": enc, "ids_no_special": enc_ns, "decoded": dec, "decoded_skip_special": dec_skip,
                "roundtrip": dec == text}
        if len(enc_ns) <= 400:
            case["stream"] = stream_deltas(tok, enc_ns, False)
        cases.append(case)
    rng = random.Random(99)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    special_ids = [tok.token_to_id(s) for s in specials]
    random_ids = []
    for k in range(25):
        ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 40))]
        if special_ids and k % 3 == 0:
            ids.insert(rng.randrange(len(ids) + 1), rng.choice(special_ids))
        if k % 5 == 0:
            ids.append(10 ** 8)  # out of range: skipped by decode
        random_ids.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                           "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
                           "stream": stream_deltas(tok, [i for i in ids if i < vocab_size], False),
                           "stream_skip_special": stream_deltas(tok, [i for i in ids if i < vocab_size], True)})
    config = {}
    if auto is not None:
        config = {"bos_token": auto.bos_token, "eos_token": auto.eos_token, "pad_token": auto.pad_token,
                  "bos_token_id": auto.bos_token_id, "eos_token_id": auto.eos_token_id,
                  "pad_token_id": auto.pad_token_id, "has_chat_template": bool(auto.chat_template)}
    return {
        "name": name,
        "config": config,
        "source": source,
        "generator": "tokenizers %s" % tokenizers.__version__,
        "vocab_size": vocab_size,
        "cases": cases,
        "random_ids": random_ids,
    }


def ranges_of(code_points):
    out = []
    for x in sorted(code_points):
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ", ".join("{0x%X, 0x%X}" % (a, b) for a, b in out)


def print_unicode_tables():
    """Prints the code-point tables in src/tokenizer/normalizer.cpp and unicode.cpp: where the
    Unicode data inside tokenizers (normalization, punctuation) differs from current Unicode."""
    sep = "\u0001"
    cands = [chr(c) for c in range(0x80, 0x110000)
             if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    unknown = set()
    for form in ["NFC", "NFD", "NFKC", "NFKD"]:
        n = getattr(normalizers, form)()
        for i in range(0, len(cands), 20000):
            chunk = cands[i:i + 20000]
            for c, h in zip(chunk, n.normalize_str(sep.join(chunk)).split(sep)):
                if h != unicodedata.normalize(form, c):
                    unknown.add(ord(c))
    marks = [c for c in cands if unicodedata.combining(c) > 1]
    nfd = normalizers.NFD()
    for c, h in zip(marks, nfd.normalize_str(sep.join("a" + c + "\u0334" for c in marks)).split(sep)):
        if h != unicodedata.normalize("NFD", "a" + c + "\u0334"):
            unknown.add(ord(c))
    print("kUnknownToHf:", ranges_of(unknown))
    punct = pre_tokenizers.Punctuation()
    hf = {ord(c) for c in cands if len(punct.pre_tokenize_str("x" + c + "x")) == 3}
    py = {ord(c) for c in cands if unicodedata.category(c).startswith("P")}
    print("kNotPunctuationForHf:", ranges_of(py - hf))
    print("punctuation only for tokenizers:", ", ".join("0x%X" % c for c in sorted(hf - py)))


def main():
    if "--normalizer-table" in sys.argv:
        print_unicode_tables()
        return
    os.makedirs(OUT, exist_ok=True)
    written = []
    for name in sorted(os.listdir(SHARED)) if os.path.isdir(SHARED) else []:
        path = os.path.join(SHARED, name, "tokenizer.json")
        if not os.path.isfile(path):
            continue
        tok = Tokenizer.from_file(path)
        g = golden_for(name, tok, "shared:" + name, os.path.join(SHARED, name))
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(g, f, ensure_ascii=False, separators=(",", ":"))
        written.append(name)
    for name, build in [("synthetic-llama2", build_llama2_legacy), ("synthetic-metaspace", build_metaspace),
                        ("synthetic-bytelevel", build_bytelevel_digits)]:
        d = os.path.join(OUT, "synthetic", name)
        if os.path.isfile(os.path.join(d, "tokenizer.json")) and "--retrain" not in sys.argv:
            # BPE training is not bit-reproducible; keep the committed synthetic tokenizers.
            tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            g = golden_for(name, tok, "synthetic:" + name)
            with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
                json.dump(g, f, ensure_ascii=False, separators=(",", ":"))
            written.append(name)
            continue
        tok, config = build()
        os.makedirs(d, exist_ok=True)
        j = json.loads(tok.to_str())
        if name == "synthetic-bytelevel":
            # Exercise the older "left right" spelling of merges.
            j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, indent=1)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        g = golden_for(name, tok, "synthetic:" + name)
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(g, f, ensure_ascii=False, separators=(",", ":"))
        written.append(name)
    print("wrote goldens for:", ", ".join(written), file=sys.stderr)


if __name__ == "__main__":
    main()
