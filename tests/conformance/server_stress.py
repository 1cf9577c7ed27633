"""Load and robustness runs against `nibble serve` (loopback only, bounded).

  /root/.venvs/nibble/bin/python tests/conformance/server_stress.py \
      --nibble build/dev/src/cli/nibble --model ../shared/tokenizers/qwen3 [--real] [--garbage 10000]

load:    200 greedy requests (mixed chat/completions, streaming and not) at concurrency 32; every one
         must succeed and equal the same request run alone, sequentially, beforehand.
garbage: N malformed requests over raw sockets (bad JSON, wrong types, huge numbers, invalid UTF-8,
         truncated bodies, bad headers, slow clients that stall mid-body); every complete reply must be
         a 4xx with an OpenAI error body (a truncated or stalled body may get no reply: the server drops
         it after its read timeout), and /health must answer 200 afterwards.
Pass --fake-runner (the default) to use the deterministic fake model; --real to load MODEL's weights.
"""
import argparse
import concurrent.futures as cf
import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=b"", headers=None, timeout=120):
    """One request over a fresh socket; returns (status, body bytes) or (None, reason)."""
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
    for k, v in (headers or {"Content-Type": "application/json"}).items():
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        return None, "no reply"
    line, _, rest = data.partition(b"\r\n")
    status = int(line.split()[1])
    hdrs, _, payload = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in hdrs.lower():
        out, p = b"", payload
        while p:
            size_line, _, p = p.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, p = out + p[:n], p[n + 2:]
        payload = out
    return status, payload


def generate(port, i):
    chat = i % 2 == 0
    stream = i % 3 == 0
    body = {"model": "tiny", "max_tokens": 8 + i % 17, "temperature": 0, "ignore_eos": True, "stream": stream}
    if chat:
        body["messages"] = [{"role": "user", "content": "Question %d about something" % (i % 40)}]
    else:
        body["prompt"] = "Prompt %d: the quick brown fox" % (i % 40)
    status, payload = http(port, "POST", "/v1/chat/completions" if chat else "/v1/completions",
                           json.dumps(body).encode())
    if status != 200:
        return None
    if not stream:
        j = json.loads(payload)
        c = j["choices"][0]
        return c["message"]["content"] if chat else c["text"]
    text = ""
    for ev in payload.decode().split("\n\n"):
        if not ev.startswith("data: ") or ev == "data: [DONE]":
            continue
        j = json.loads(ev[6:])
        for c in j.get("choices", []):
            text += (c["delta"].get("content") or "") if chat else c["text"]
    return text


def load_test(port, n=200, concurrency=32):
    sequential = [generate(port, i) for i in range(n)]
    t0 = time.time()
    with cf.ThreadPoolExecutor(concurrency) as ex:
        concurrent = list(ex.map(lambda i: generate(port, i), range(n)))
    dt = time.time() - t0
    failures = sum(r is None for r in concurrent) + sum(r is None for r in sequential)
    mismatches = sum(a != b for a, b in zip(sequential, concurrent))
    print("load: %d requests at concurrency %d in %.1f s: %d failures, %d differ from sequential"
          % (n, concurrency, dt, failures, mismatches))
    return failures == 0 and mismatches == 0


GOOD = [
    {"model": "tiny", "prompt": "hello", "max_tokens": 4},
    {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True},
    {"prompt": [1, 2, 3], "n": 2, "stop": ["a"], "logprobs": 2, "max_tokens": 3},
]
BAD_VALUES = [None, -1, 0, 1e308, -1e308, 2 ** 64, -(2 ** 63) - 1, "x", "", [], {}, [[]], True, 0.5,
              "\ud800", [1, "a"], {"a": [1, {"b": None}]}, 10 ** 30, "9" * 400]
FIELDS = ["prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p",
          "n", "stop", "seed", "logprobs", "top_logprobs", "stream", "stream_options", "stop_token_ids",
          "presence_penalty", "frequency_penalty", "repetition_penalty", "model", "chat_template_kwargs",
          "response_format", "tools", "ignore_eos", "min_tokens"]


def mutate(rng):
    """Returns (path, body bytes, headers or None, mode)."""
    path = rng.choice(["/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"])
    base = dict(rng.choice(GOOD))
    kind = rng.randrange(8)
    if kind == 0:  # a field with a wrong type / value
        base[rng.choice(FIELDS)] = rng.choice(BAD_VALUES)
        return path, json.dumps(base).encode(), None, "value"
    if kind == 1:  # truncated JSON
        b = json.dumps(base).encode()
        return path, b[: rng.randrange(1, len(b))], None, "truncated-json"
    if kind == 2:  # invalid UTF-8 inside strings
        b = json.dumps(base).encode()
        k = rng.randrange(len(b))
        return path, b[:k] + bytes([rng.choice([0x80, 0xC0, 0xFF, 0xED])]) + b[k:], None, "utf8"
    if kind == 3:  # random bytes
        return path, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))), None, "random"
    if kind == 4:  # deep nesting / huge arrays
        depth = rng.choice([65, 1000, 100000])
        return path, b"[" * depth + b"]" * depth, None, "deep"
    if kind == 5:  # numbers out of every range
        base[rng.choice(FIELDS)] = float("1e999") if rng.random() < 0.5 else 10 ** rng.randrange(19, 400)
        return path, json.dumps(base).encode().replace(b"Infinity", b"1e999"), None, "huge"
    if kind == 6:  # bad headers
        hdr = rng.choice([{"Content-Type": "text/plain"}, {"Content-Type": "application/json", "X-Junk": "a" * 9000},
                          {"Content-Type": "application/json", "Transfer-Encoding": "gzip"}])
        return path, json.dumps(base).encode(), hdr, "headers"
    return rng.choice(["/v1/models", "/nope", "/v1/completions"]), b"{}", None, "method"


def garbage_test(port, n, seed=7):
    rng = random.Random(seed)
    counts = {"4xx": 0, "2xx": 0, "no-reply": 0, "bad": 0, "slow": 0}
    bad_examples = []

    def one(i):
        r = random.Random(seed * 1000003 + i)
        if i % 500 == 0:  # a slow client: half a body, then silence until the server drops it
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
                    s.settimeout(60)
                    s.recv(1024)
                return "slow", None
            except Exception:
                return "slow", None
        path, body, hdr, mode = mutate(r)
        method = "GET" if mode == "method" and path != "/v1/completions" else "POST"
        if mode == "method" and path == "/v1/completions":
            method = "GET"
        try:
            status, payload = http(port, method, path, body, hdr, timeout=60)
        except Exception as e:  # noqa: BLE001
            return "no-reply", (mode, repr(e))
        if status is None:
            return "no-reply", (mode, payload)
        if 200 <= status < 300:
            return "2xx", None
        try:
            j = json.loads(payload)
            ok = 400 <= status < 500 and isinstance(j.get("error", {}).get("message"), str)
        except Exception:  # noqa: BLE001
            ok = False
        return ("4xx", None) if ok else ("bad", (mode, status, payload[:200]))

    t0 = time.time()
    with cf.ThreadPoolExecutor(16) as ex:
        for kind, info in ex.map(one, range(n)):
            counts[kind] += 1
            if kind == "bad" and len(bad_examples) < 5:
                bad_examples.append(info)
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=10) as r:
        healthy = r.status == 200
    print("garbage: %d requests in %.1f s: %s; /health after: %s" % (n, time.time() - t0, counts, healthy))
    for b in bad_examples:
        print("  bad reply:", b)
    return counts["bad"] == 0 and healthy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", default="build/dev/src/cli/nibble")
    ap.add_argument("--model", default="../shared/tokenizers/qwen3")
    ap.add_argument("--real", action="store_true", help="load MODEL's weights instead of --fake-runner")
    ap.add_argument("--garbage", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    port = free_port()
    cmd = [args.nibble, "serve", args.model, "--port", str(port), "--served-model-name", "tiny",
           "--max-model-len", "1024"]
    if not args.real:
        cmd.append("--fake-runner")
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    ok = True
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=1)
                break
            except Exception:  # noqa: BLE001
                if proc.poll() is not None:
                    raise RuntimeError("server exited")
                time.sleep(0.2)
        ok &= load_test(port, args.requests)
        ok &= garbage_test(port, args.garbage)
        ok &= proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        print("exit status after SIGTERM:", rc)
        ok &= rc == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
