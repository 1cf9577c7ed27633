"""Conformance: the official `openai` Python SDK against a running `nibble serve`.

Starts `nibble serve MODEL --fake-runner` (or uses --url for a server you started), then checks
chat, completions, streaming with usage, stop strings, n > 1, logprobs, /tokenize, and the
error statuses as the SDK sees them (BadRequestError, AuthenticationError, NotFoundError).

  /root/.venvs/nibble/bin/python tests/conformance/openai_sdk_test.py \
      --nibble build/dev/src/cli/nibble --model ../shared/tokenizers/qwen3
  # or with real weights:
  nibble make-model /tmp/tiny --arch qwen3 --preset tiny --tokenizer ../shared/tokenizers/qwen3
  /root/.venvs/nibble/bin/python tests/conformance/openai_sdk_test.py --real-model --model /tmp/tiny
  # mixture-of-experts models with their real tokenizers (gpt-oss: harmony channels -> reasoning_content):
  nibble make-model /tmp/go --arch gpt-oss --preset tiny --tokenizer ../shared/tokenizers/gpt-oss
  nibble make-model /tmp/qm --arch qwen3-moe --preset tiny --tokenizer ../shared/tokenizers/qwen3
  /root/.venvs/nibble/bin/python tests/conformance/openai_sdk_test.py --real-model --reasoning --model /tmp/go
  /root/.venvs/nibble/bin/python tests/conformance/openai_sdk_test.py --real-model --reasoning --model /tmp/qm

With a fake runner the text is arbitrary but deterministic; the checks are the API's shapes and
invariants (streamed text == non-streamed text, stop string absent and output a prefix, usage sums).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import openai

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc=None, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("nibble serve exited with %d" % proc.returncode)
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("server did not become healthy")


def run(base_url, model, api_key, reasoning=False):
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0)
    msgs = [{"role": "user", "content": "Say hello"}]

    models = client.models.list()
    check(models.data[0].id == model, "models.list id")

    # Chat, non-streaming.
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=16, temperature=0,
                                       extra_body={"ignore_eos": True})
    full = r.choices[0].message.content or ""
    check(r.object == "chat.completion" and r.choices[0].message.role == "assistant", "chat shape")
    if reasoning:
        # A reasoning parser (qwen3 <think> or gpt-oss harmony) adds reasoning_content to the message.
        extra = r.choices[0].message.model_extra or {}
        check("reasoning_content" in extra, "chat message has reasoning_content")
        print("     content %r reasoning %r" % (full[:60], (extra.get("reasoning_content") or "")[:60]))
    check(r.usage.completion_tokens == 16 and r.usage.total_tokens == r.usage.prompt_tokens + 16, "chat usage")
    check(r.choices[0].finish_reason == "length", "chat finish_reason length")

    # Chat, streaming with usage: same text as non-streaming.
    text, usage, finish, roles = "", None, None, 0
    for chunk in client.chat.completions.create(model=model, messages=msgs, max_tokens=16, temperature=0,
                                                stream=True, stream_options={"include_usage": True},
                                                extra_body={"ignore_eos": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.role:
                roles += 1
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    check(text == full, "chat stream text == non-stream text")
    check(usage is not None and usage.completion_tokens == 16, "chat stream usage chunk")
    check(roles == 1 and finish == "length", "chat stream role + finish")

    # Completions, both ways.
    c = client.completions.create(model=model, prompt="Once upon a time", max_tokens=24, temperature=0,
                                  extra_body={"ignore_eos": True})
    ctext = c.choices[0].text
    check(c.object == "text_completion" and c.usage.completion_tokens == 24, "completion shape + usage")
    stext, susage = "", None
    for chunk in client.completions.create(model=model, prompt="Once upon a time", max_tokens=24, temperature=0,
                                           stream=True, stream_options={"include_usage": True},
                                           extra_body={"ignore_eos": True}):
        if chunk.usage is not None:
            susage = chunk.usage
        for ch in chunk.choices:
            stext += ch.text
    check(stext == ctext, "completion stream text == non-stream text")
    check(susage is not None and susage.completion_tokens == 24, "completion stream usage")

    # Stop strings: pick one from the middle of the known output.
    if len(ctext) >= 12:
        stop = ctext[6:9]
        at = ctext.find(stop)
        s = client.completions.create(model=model, prompt="Once upon a time", max_tokens=24, temperature=0,
                                      stop=[stop], extra_body={"ignore_eos": True})
        check(s.choices[0].text == ctext[:at], "stop string truncates before the match")
        check(s.choices[0].finish_reason == "stop", "stop finish_reason")
        stream_text = "".join(ch.text for chunk in client.completions.create(
            model=model, prompt="Once upon a time", max_tokens=24, temperature=0, stop=stop, stream=True,
            extra_body={"ignore_eos": True}) for ch in chunk.choices)
        check(stream_text == ctext[:at], "stop string (streaming)")
    else:
        check(False, "completion long enough to pick a stop string")

    # n > 1.
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=8, temperature=0, n=3,
                                       extra_body={"ignore_eos": True})
    check(len(r.choices) == 3 and sorted(ch.index for ch in r.choices) == [0, 1, 2], "n=3 choices")
    check(r.usage.completion_tokens == 24, "n=3 usage")

    # Logprobs.
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=4, logprobs=True, top_logprobs=2,
                                       extra_body={"ignore_eos": True})
    check(r.choices[0].logprobs is not None and len(r.choices[0].logprobs.content) == 4, "chat logprobs")

    # Thinking switch passes through chat_template_kwargs.
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=4,
                                       extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    check(r.choices[0].finish_reason in ("length", "stop"), "chat_template_kwargs accepted")

    # /tokenize and /detokenize (vLLM shapes, as `nibble bench serve` uses them).
    req = urllib.request.Request(base_url + "/tokenize", data=json.dumps({"model": model, "prompt": "hello world"}).encode(),
                                 headers={"Content-Type": "application/json"})
    tok = json.load(urllib.request.urlopen(req))
    check(tok["count"] == len(tok["tokens"]) and tok["max_model_len"] > 0, "/tokenize")
    req = urllib.request.Request(base_url + "/detokenize", data=json.dumps({"model": model, "tokens": tok["tokens"]}).encode(),
                                 headers={"Content-Type": "application/json"})
    check(json.load(urllib.request.urlopen(req))["prompt"] == "hello world", "/detokenize round trip")

    # Errors, as the SDK classifies them.
    def expect(exc_type, fn, what):
        try:
            fn()
            check(False, what + " (no error)")
        except exc_type as e:
            body = getattr(e, "body", None) or {}
            check(isinstance(body, dict) and "message" in body, what + " -> %s %s" % (type(e).__name__, body.get("param")))
        except Exception as e:  # noqa: BLE001
            check(False, "%s (got %s: %s)" % (what, type(e).__name__, e))

    expect(openai.BadRequestError, lambda: client.chat.completions.create(model=model, messages=msgs, temperature=-1),
           "400 temperature")
    expect(openai.BadRequestError, lambda: client.chat.completions.create(model="no-such-model", messages=msgs),
           "400 unknown model")
    expect(openai.BadRequestError, lambda: client.chat.completions.create(model=model, messages=[]), "400 empty messages")
    expect(openai.BadRequestError, lambda: client.completions.create(model=model, prompt="x" * 100000, max_tokens=4),
           "400 prompt over the context")
    expect(openai.BadRequestError, lambda: client.completions.create(model=model, prompt="x", max_tokens=10**9),
           "400 max_tokens over the context")
    if api_key != "none":
        bad = openai.OpenAI(base_url=base_url + "/v1", api_key="wrong", max_retries=0)
        expect(openai.AuthenticationError, lambda: bad.models.list(), "401 wrong API key")
    nf = openai.OpenAI(base_url=base_url + "/nope", api_key=api_key, max_retries=0)
    expect(openai.NotFoundError, lambda: nf.models.list(), "404 unknown path")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", default="build/dev/src/cli/nibble")
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "../../../shared/tokenizers/qwen3"))
    ap.add_argument("--real-model", dest="fake_runner", action="store_false", default=True,
                    help="serve MODEL's weights (e.g. a `nibble make-model --tokenizer` checkpoint) instead of the fake runner")
    ap.add_argument("--url", help="use a running server instead of starting one")
    ap.add_argument("--served-model-name", default="tiny")
    ap.add_argument("--reasoning", action="store_true",
                    help="expect reasoning_content in chat messages (qwen3 <think> / gpt-oss harmony models)")
    args = ap.parse_args()
    api_key = "test-key"
    proc = None
    if args.url:
        url = args.url
    else:
        port = free_port()
        cmd = [args.nibble, "serve", args.model, "--port", str(port), "--served-model-name", args.served_model_name,
               "--api-key", api_key, "--max-model-len", "2048"]
        if args.fake_runner:
            cmd.append("--fake-runner")
        proc = subprocess.Popen(cmd)
        url = "http://127.0.0.1:%d" % port
    try:
        wait_healthy(url, proc)
        run(url, args.served_model_name, api_key, args.reasoning)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            check(rc == 0, "SIGTERM -> exit 0 (got %d)" % rc)
    print("%d failures" % len(FAILURES))
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
