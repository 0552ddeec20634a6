"""The openai backend through a mock HTTP transport (no network), and the fake backend."""

import json

import httpx
import pytest

from qa.errors import QAError
from qa.library import make_embedder, make_llm
from qa.llm.openai_chat import OpenAIChat
from qa.settings import load_settings
from tests.fakes import FakeLLM

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]


def _chat(handler) -> OpenAIChat:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAIChat("test-model", base_url="http://llm.test/v1", api_key="sk-test", http_client=client, max_retries=0)


def test_complete_sends_the_request_and_reads_usage():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["authorization"]
        seen["body"] = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "test-model",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Seven per cent [1]."},
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
            },
        )

    llm = _chat(handler)
    assert llm.complete(MESSAGES, max_tokens=50) == "Seven per cent [1]."
    assert seen["url"] == "http://llm.test/v1/chat/completions"
    assert seen["auth"] == "Bearer sk-test"
    assert seen["body"]["model"] == "test-model" and seen["body"]["max_tokens"] == 50
    assert seen["body"]["messages"] == MESSAGES
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens, llm.usage.finished) == (12, 5, True)


def _sse(events: list[dict], done: bool = True) -> bytes:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def _chunk(content=None, finish=None, usage=None):
    choices = (
        []
        if content is None and finish is None
        else [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
    )
    event = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": choices}
    if usage:
        event["usage"] = usage
    return event


def test_stream_yields_pieces_and_usage():
    def handler(request):
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=_sse(
                [
                    _chunk("Seven "),
                    _chunk("per cent [1]."),
                    _chunk(finish="stop"),
                    _chunk(usage={"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34}),
                ]
            ),
        )

    llm = _chat(handler)
    assert "".join(llm.stream(MESSAGES)) == "Seven per cent [1]."
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens, llm.usage.finished) == (30, 4, True)


def test_stream_cut_off_midway_is_marked_unfinished():
    def handler(request):
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=_sse([_chunk("Seven "), _chunk("per")], done=False),
        )

    llm = _chat(handler)
    assert "".join(llm.stream(MESSAGES)) == "Seven per"
    assert llm.usage.finished is False


@pytest.mark.parametrize("status, words", [(401, "API key"), (404, "no model"), (500, "HTTP 500"), (429, "HTTP 429")])
def test_server_errors_become_one_clear_message(status, words):
    llm = _chat(lambda request: httpx.Response(status, json={"error": {"message": "nope"}}))
    with pytest.raises(QAError, match=words):
        llm.complete(MESSAGES)
    with pytest.raises(QAError, match=words):
        list(llm.stream(MESSAGES))


def test_unreachable_server_says_what_to_check():
    def handler(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(QAError, match="OPENAI_BASE_URL"):
        _chat(handler).complete(MESSAGES)


def test_missing_key_and_base_url_says_what_to_set():
    with pytest.raises(QAError, match="OPENAI_API_KEY"):
        make_llm(load_settings({"llm": "openai:gpt-4o-mini"}))


def test_openai_is_the_default_when_configured(monkeypatch):
    assert load_settings().resolved_llm() == "local"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert load_settings().resolved_llm().startswith("openai:")
    monkeypatch.setenv("QA_LLM", "extractive")
    assert load_settings().resolved_llm() == "extractive"


def test_fake_llm_replays_and_records():
    fake = FakeLLM(replies=["one [1].", "two [2]."])
    assert fake.complete(MESSAGES) == "one [1]."
    assert "".join(fake.stream(MESSAGES)).strip() == "two [2]."
    assert "".join(fake.stream(MESSAGES)).strip() == "two [2]."  # the last reply repeats
    assert fake.calls == [MESSAGES, MESSAGES, MESSAGES]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(QAError, match="Unknown LLM"):
        make_llm(load_settings({"llm": "gpt5"}))


def test_extractive_is_no_model_and_plugins_add_backends():
    assert make_llm(load_settings({"llm": "extractive"})) is None
    fake = make_llm(load_settings({"llm": "fake"}))  # registered by tests/fakes.py through QA_PLUGINS
    assert isinstance(fake, FakeLLM) and fake.complete([{"role": "user", "content": "hi"}])
    assert make_embedder(load_settings({"embedder": "fake"})).name == "fake"
    with pytest.raises(QAError, match="Unknown LLM"):
        make_llm(load_settings({"llm": "fake", "plugins": ""}))


def _judged(logprobs: dict | None, status: int = 200):
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["logprobs"] is True and body["top_logprobs"] == 10 and body["max_tokens"] == 1
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "logprobs are not supported"}})
        choice = {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Yes"}}
        if logprobs is not None:
            choice["logprobs"] = logprobs
        return httpx.Response(
            200,
            json={"id": "x", "object": "chat.completion", "created": 0, "model": "test-model", "choices": [choice],
                  "usage": {"prompt_tokens": 30, "completion_tokens": 1, "total_tokens": 31}},
        )  # fmt: skip

    return _chat(handler)


def test_the_models_own_check_reads_yes_against_no_from_log_probabilities():
    import math

    top = [
        {"token": "Yes", "logprob": math.log(0.6), "bytes": None},
        {"token": " no", "logprob": math.log(0.2), "bytes": None},
        {"token": "Maybe", "logprob": math.log(0.1), "bytes": None},
    ]
    content = [{"token": "Yes", "logprob": math.log(0.6), "bytes": None, "top_logprobs": top}]
    assert _judged({"content": content}).yes_probability(MESSAGES) == pytest.approx(0.75)
    # a server that gives no log-probabilities, or refuses the parameter: no check, and no error
    assert _judged(None).yes_probability(MESSAGES) is None
    assert _judged(None, status=400).yes_probability(MESSAGES) is None
