"""The openai backend against a misbehaving OpenAI-compatible server on loopback:
429 and 500, a hang, a connection dropped mid-stream, malformed JSON, a closed port."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa.errors import QAError
from qa.llm.openai_chat import OpenAIChat

MESSAGES = [{"role": "user", "content": "How much?"}]


def _completion(text: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _chunk(text: str) -> bytes:
    event = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


class FaultyServer:
    """Behaviour chosen by the model name in the request; counts requests per behaviour."""

    def __init__(self):
        self.calls: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                mode = body["model"]
                outer.calls[mode] = outer.calls.get(mode, 0) + 1
                n = outer.calls[mode]
                if mode == "flaky-429" and n == 1 or mode == "always-429":
                    return self._json(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})
                if mode == "always-500":
                    return self._json(500, {"error": {"message": "boom"}})
                if mode == "hang":
                    time.sleep(3)
                    return self._json(200, _completion("late"))
                if mode == "malformed":
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "9")
                    self.end_headers()
                    self.wfile.write(b"{not json")
                    return
                if mode == "drop-before-token":  # as llama.cpp's server does when killed: chunked, cut short
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    role = {**json.loads(_chunk("")[6:]), "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
                    event = f"data: {json.dumps(role)}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))  # the role, then no token
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # gone after the headers, before any token
                    return
                if mode == "drop-mid-stream":
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(_chunk("Seven ") + _chunk("per cent"))
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # gone, no [DONE]
                    return
                return self._json(200, _completion("Seven per cent [1]."))

            def _json(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # the client hung up on purpose (timeouts): not worth a stack trace

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    s = FaultyServer()
    yield s
    s.close()


def _llm(server, model, timeout=10.0, retries=2):
    return OpenAIChat(model, base_url=server.url, api_key="sk-test", timeout=timeout, max_retries=retries)


def test_a_429_is_retried_with_backoff_and_then_succeeds(server):
    assert _llm(server, "flaky-429").complete(MESSAGES) == "Seven per cent [1]."
    assert server.calls["flaky-429"] == 2


def test_persistent_429_and_500_give_one_clear_error_after_retries(server):
    with pytest.raises(QAError, match="HTTP 429"):
        _llm(server, "always-429").complete(MESSAGES)
    assert server.calls["always-429"] == 3  # the first try and two retries
    with pytest.raises(QAError, match="HTTP 500"):
        list(_llm(server, "always-500").stream(MESSAGES))


def test_a_hanging_server_times_out_with_a_message(server):
    with pytest.raises(QAError, match="did not answer in time"):
        _llm(server, "hang", timeout=0.5, retries=0).complete(MESSAGES)


def test_malformed_json_is_reported_not_a_traceback(server):
    with pytest.raises(QAError, match="cannot read|failed"):
        _llm(server, "malformed", retries=0).complete(MESSAGES)


def test_a_stream_dropped_midway_gives_a_partial_answer_marked_incomplete(server, embedder):
    from qa.answer import AskOptions, answer
    from qa.records import Passage

    llm = _llm(server, "drop-mid-stream", retries=0)
    passages = [Passage(1, "a", "Workers accepted a rise of seven per cent.", 0, 43)]
    result = answer("How much?", passages, llm=llm, embedder=embedder, options=AskOptions())
    assert result.incomplete
    assert "Seven per cent" in "".join(s.text for s in result.sentences) or result.fallback


def test_a_stream_dropped_before_any_token_is_one_clear_error_that_can_be_retried(server):
    """A stream cut after its first event but before any token (what a killed engine gives) is one
    clear error, of the kind on which the background engine's client restarts the engine and retries."""
    from qa.llm.openai_chat import ServerUnreachable

    with pytest.raises(ServerUnreachable, match="Cannot reach the model server"):
        list(_llm(server, "drop-before-token", retries=0).stream(MESSAGES))


def test_unreachable_base_url_says_what_to_set():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    llm = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0, timeout=2)
    with pytest.raises(QAError, match="Cannot reach the model server .* OPENAI_BASE_URL") as raised:
        llm.complete(MESSAGES)
    from qa.llm.openai_chat import ServerUnreachable

    assert isinstance(raised.value, ServerUnreachable)  # what the background engine's client retries on
