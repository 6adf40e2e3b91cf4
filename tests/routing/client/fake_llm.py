"""A local fake of the OpenAI HTTP API (`/v1/chat/completions`) for the integration tests: real
response shapes, 429, 500, requests it never answers, and streams of server-sent `data:` chunks
ending in a usage chunk (when asked for) and `data: [DONE]`."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTENT = ("It", " ships", " tomorrow.")
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
STREAM_USAGE = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}


class FakeOpenAI:
    """An OpenAI-compatible API on a loopback port. `script[model]` is consumed one entry per
    request for that model: "ok", 429, 500, "hang" (no answer until the test ends), or for a
    stream "silent" (the headers, then nothing), "stall" (the first chunk, then nothing) and
    "sse-error" (the first chunk, then an error event); an empty script answers "ok". A request
    whose model is `provider/model` is scripted under `model`."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.finished_streams = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                model = body["model"].rsplit("/", 1)[-1]
                steps = fake.script.get(model, [])
                step = steps.pop(0) if steps else "ok"
                if step == "hang":
                    fake.release.wait(30)
                    return
                if step == 429:
                    error = {"message": "Rate limit reached", "type": "requests", "param": None}
                    self._send(429, {"error": {**error, "code": "rate_limit_exceeded"}}, {"retry-after": "0"})
                elif step == 500:
                    error = {"message": "The server had an error", "type": "server_error", "param": None}
                    self._send(500, {"error": {**error, "code": None}})
                elif body.get("stream"):
                    self._stream(model, step, bool((body.get("stream_options") or {}).get("include_usage")))
                else:
                    self._send(200, completion(model))

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, model: str, step: Any, include_usage: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                if step == "silent":
                    self.wfile.flush()
                    fake.release.wait(30)
                    return
                try:
                    for index, chunk in enumerate(stream_chunks(model, include_usage)):
                        self._event(chunk)
                        if index == 0 and step == "stall":
                            fake.release.wait(30)
                            return
                        if index == 0 and step == "sse-error":
                            self._event({"error": {"message": "The server had an error", "type": "server_error"}})
                            return
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    fake.finished_streams += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def models(self) -> list[str]:
        return [r["model"] for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(model: str) -> dict[str, Any]:
    """A chat completion as the OpenAI API returns it."""
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{model}-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "It ships tomorrow.", "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            **USAGE,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }


def stream_chunks(model: str, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks of a streamed chat completion as the OpenAI API sends them: the role, the
    content pieces, the finish reason and, with `include_usage`, a last chunk of usage alone (every
    other chunk then carries `"usage": null`)."""
    base = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": f"{model}-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }
    if include_usage:
        base["usage"] = None
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": "", "refusal": None}, None)]
    deltas += [({"content": piece}, None) for piece in CONTENT]
    deltas.append(({}, "stop"))
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        for delta, finish in deltas
    ]
    if include_usage:
        usage = {
            **STREAM_USAGE,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks
