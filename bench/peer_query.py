"""The LlamaIndex query-engine peer for the answer benchmark: same articles, embedder, model and engine as qa.

Runs inside bench/.peer-venv (made by `peer_env.ensure_peer_venv`) and prints one JSON line of
figures on stdout; everything else goes to stderr. Normally started by `peer_env.run_query_peer`
(network cut, the engine reached through a relay socket); by hand, against an engine on loopback:

    PEER_API_KEY=KEY bench/.peer-venv/bin/python bench/peer_query.py --base-url http://127.0.0.1:PORT \\
        [--data ../shared/eval/realtimeqa-dev] [--limit N] [--questions ids.json] [--engine-socket PATH]

What it does:
- Ingests the RealTimeQA dev pool (every `*_gcs.jsonl` of --data, read by qa's own loader, so the
  texts are exactly qa's) the way bench/peer_llamaindex.py does (bench/peer_setup.py: SentenceSplitter
  at 300 / 45 cl100k tokens, qa's MiniLM embedder as a BaseEmbedding, an IngestionPipeline into a
  ChromaVectorStore on a PersistentClient in a temporary folder).
- Answers with the default query engine, `VectorStoreIndex.as_query_engine(similarity_top_k=3)`:
  compact response mode and LlamaIndex's stock prompts (for a chat model, its CHAT_TEXT_QA_PROMPT).
  The LLM is `OpenAILike` on the OpenAI-compatible engine at --base-url, as a chat model (the
  engine applies the model's chat template, as it does for qa), temperature 0, max_tokens 320
  (qa's answer budget), context window 4096 (qa's local engine's n_ctx).
- Then asks the same two follow-ups as qa's eval (prompts/short_user.md, prompts/choose_user.md,
  filled as qa.eval.respond fills them) as chat turns after the answer, through the same LLM at
  qa's eval token limits (32 and 12): three calls per question, as qa makes. Only
  `question_sentence` is asked; `evidence` and `question_url` never reach the peer (qa's RealTimeQA
  adapter leaves them out).
- Scores with qa's own metrics: exact match of the short answer (cleaned and refusal-checked as qa's
  eval does), multiple choice as `parse_choice(reply) == gold index` (an unparsed reply is wrong: the
  peer has no fallback), and whether the three chunks hold a gold answer (answer recall).

Per question: wall seconds of the three calls together (`total_s`, from the query to the choice
reply), of the answer alone (`answer_s`, retrieval included), and the prompt tokens the engine
reports for each call. Aggregates: p50/p95 seconds per question (qa.eval.metrics.percentile),
MC accuracy, EM. Nothing is downloaded at run time (see bench/peer_setup.py); the driver cuts the
network with `unshare -rn`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import peer_setup  # noqa: E402  (bench/: this script's folder)

from qa.eval import metrics  # noqa: E402
from qa.eval.gold import EvalItem, EvalOptions  # noqa: E402
from qa.eval.respond import _clean_short, lettered  # noqa: E402  (qa's own clean-up, so EM is comparable)
from qa.prompts import REFUSAL, fill  # noqa: E402
from qa.verify import is_refusal  # noqa: E402

TOP_K = 3
ANSWER_TOKENS = 320  # qa's AskOptions.max_tokens
CONTEXT_WINDOW = 4096  # qa's local engine (qa/llm/local.py n_ctx)
API_KEY_VARIABLE = "PEER_API_KEY"


def select(items: Sequence[EvalItem], ids: Sequence[str] | None, limit: int) -> list[EvalItem]:
    """The items named by `ids`, in that order (all items when None), then the first `limit` (0 = all)."""
    chosen = list(items)
    if ids is not None:
        by_id = {item.id: item for item in items}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise SystemExit(f"--questions: no such question id in the data: {', '.join(unknown[:5])}")
        chosen = [by_id[i] for i in ids]
    return chosen[:limit] if limit else chosen


def read_ids(path: Path) -> list[str]:
    """Question ids from a JSON list or one id per line."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        return [str(i) for i in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip()]


def short_prompt(item: EvalItem) -> str:
    return fill("short_user", question=item.question, refusal=REFUSAL)


def choose_prompt(item: EvalItem) -> str:
    return fill("choose_user", question=item.question, choices=lettered(item.choices))


def score(item: EvalItem, *, short_reply: str, choice_reply: str, context: str) -> dict[str, Any]:
    """qa's metrics on the peer's replies: EM of the short answer, MC against the gold index, recall."""
    short = "" if is_refusal(short_reply) else _clean_short(short_reply)
    choice = metrics.parse_choice(choice_reply, item.choices) if item.choices else None
    row: dict[str, Any] = {"short": short, "choice": choice}
    if item.answers:
        row["em"] = metrics.exact_match(short, item.answers)
        row["answer_recall"] = float(metrics.contains_span(context, item.answers))
    if item.choices and item.answer_index is not None:
        row["mc"] = float(choice == item.answer_index)
    return row


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 seconds per question (three calls, and the answer alone), MC, EM, recall, prompt tokens."""

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.mean(values), 3) if values else None

    def pct(key: str, q: float) -> float | None:
        value = metrics.percentile([r[key] for r in rows], q)
        return round(value, 2) if value is not None else None

    answer_tokens = [r["prompt_tokens"][0] for r in rows if r["prompt_tokens"] and r["prompt_tokens"][0] is not None]
    return {
        "questions": len(rows),
        "p50_s": pct("total_s", 50),
        "p95_s": pct("total_s", 95),
        "answer_p50_s": pct("answer_s", 50),
        "answer_p95_s": pct("answer_s", 95),
        "mean_s": mean("total_s"),
        "mc": mean("mc"),
        "em": mean("em"),
        "answer_recall": mean("answer_recall"),
        "choice_unparsed": sum(1 for r in rows if r.get("choice") is None and r.get("gold_index") is not None),
        "answer_prompt_tokens_mean": round(statistics.mean(answer_tokens), 1) if answer_tokens else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument("--base-url", required=True, help="the OpenAI-compatible engine, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_VARIABLE, "none"), help=f"(${API_KEY_VARIABLE})")
    parser.add_argument("--engine-socket", help="reach the engine through this Unix socket (a relay to --base-url)")
    parser.add_argument("--model", default="local", help="model name sent to the engine")
    parser.add_argument("--limit", type=int, default=0, help="first N questions only (0 = all)")
    parser.add_argument("--questions", help="file of question ids (JSON list or one per line): these, in order")
    parser.add_argument("--threads", type=int, default=0, help="embedder threads (0 = all cores)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-peer-query-") as tmp:
        peer_setup.go_offline(Path(tmp))
        from qa.eval.adapters import load_realtimeqa

        evalset = load_realtimeqa(Path(args.data), "pool", Path(tmp))
        ids = read_ids(Path(args.questions)) if args.questions else None
        items = select(evalset.items, ids, args.limit)
        files = evalset.corpora[""]
        log(f"{len(items)} questions over {len(files)} pool files")
        index, pool = build_index(files, Path(tmp), threads=args.threads)
        llm = make_llm(args)
        rows, engine_model = answer_all(index, llm, items)

    import llama_index.core

    figures = {
        "peer": f"llama-index-core {llama_index.core.__version__}",
        "packages": {
            name: version(name)
            for name in ("llama-index-core", "llama-index-llms-openai-like", "llama-index-vector-stores-chroma")
        },
        "engine": {"base_url": args.base_url, "model": engine_model, "via_socket": bool(args.engine_socket)},
        "settings": {
            "similarity_top_k": TOP_K,
            "response_mode": "compact (default)",
            "prompts": "stock (CHAT_TEXT_QA_PROMPT)",
            "is_chat_model": True,
            "temperature": 0.0,
            "max_tokens": ANSWER_TOKENS,
            "short_tokens": EvalOptions.short_tokens,
            "choose_tokens": EvalOptions.choose_tokens,
            "context_window": CONTEXT_WINDOW,
            "chunk_size": peer_setup.CHUNK_SIZE,
            "chunk_overlap": peer_setup.CHUNK_OVERLAP,
        },
        "pool": pool,
        **aggregate(rows),
        "rows": rows,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(figures))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_index(files: Sequence[Path], tmp: Path, *, threads: int) -> tuple[Any, dict[str, Any]]:
    """The pool ingested as bench/peer_llamaindex.py ingests it; the index over its vector store."""
    from llama_index.core import VectorStoreIndex

    embed_model = peer_setup.minilm(threads=threads)
    split = peer_setup.splitter()
    peer_setup.warm_up(files, embed_model, split)
    collection, vector_store = peer_setup.chroma_store(tmp / "chroma")
    t0 = time.perf_counter()
    articles = peer_setup.load_articles(files)
    documents = peer_setup.documents(articles)
    nodes = peer_setup.ingestion_pipeline(split, embed_model, vector_store).run(documents=documents)
    seconds = time.perf_counter() - t0
    pool = {
        "files": [Path(f).name for f in files],
        "articles": len(articles),
        "documents": len(documents),
        "chunks": len(nodes),
        "chunks_in_store": collection.count(),
        "ingest_s": round(seconds, 2),
    }
    log(f"ingested {len(documents)} articles into {len(nodes)} chunks in {seconds:.1f} s")
    return VectorStoreIndex.from_vector_store(vector_store, embed_model=embed_model), pool


def make_llm(args: argparse.Namespace) -> Any:
    """OpenAILike on the engine: a chat model, temperature 0, qa's answer budget; over the relay socket
    when the network is cut (a network namespace cannot reach the host's loopback)."""
    from llama_index.llms.openai_like import OpenAILike

    http_client = None
    if args.engine_socket:
        import httpx

        http_client = httpx.Client(transport=httpx.HTTPTransport(uds=args.engine_socket))
    base = args.base_url.rstrip("/")
    return OpenAILike(
        model=args.model,
        api_base=base if base.endswith("/v1") else base + "/v1",
        api_key=args.api_key,
        is_chat_model=True,
        temperature=0.0,
        max_tokens=ANSWER_TOKENS,
        context_window=CONTEXT_WINDOW,
        timeout=600.0,  # a 2-core laptop reading a long prompt takes well over the 60 s default
        http_client=http_client,
    )


def engine_timings(raw: Any) -> dict[str, Any]:
    """The `timings` a llama.cpp server adds to its reply (an extra field of openai's model), or {}."""
    extra = getattr(raw, "model_extra", None) or {}
    timings = extra.get("timings")
    return timings if isinstance(timings, dict) else {}


def answer_all(index: Any, llm: Any, items: Sequence[EvalItem]) -> tuple[list[dict[str, Any]], str]:
    """Each question: the query engine's answer, then the two follow-ups; timed and scored."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.llm import LLMChatEndEvent

    class ChatCalls(BaseEventHandler):
        """Every chat call the LLM finishes: the messages it was sent and its response."""

        ended: list = []

        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, LLMChatEndEvent):
                self.ended.append(event)

    calls = ChatCalls()
    get_dispatcher().add_event_handler(calls)
    engine = index.as_query_engine(llm=llm, similarity_top_k=TOP_K)
    # OpenAI's request builder puts the instance's max_tokens over a per-call one: copies carry the limits
    short_llm = llm.model_copy(update={"max_tokens": EvalOptions.short_tokens})
    choose_llm = llm.model_copy(update={"max_tokens": EvalOptions.choose_tokens})
    # warm-up (the VM maps memory lazily; the first HTTP connection), as bench/answer.py does for qa
    short_llm.chat([ChatMessage(role=MessageRole.USER, content="Say OK.")])
    engine_model = getattr(calls.ended[-1].response.raw, "model", "") or ""

    rows = []
    for n, item in enumerate(items, 1):
        calls.ended.clear()
        t0 = time.perf_counter()
        response = engine.query(item.question)
        answer_s = time.perf_counter() - t0
        answer_calls = len(calls.ended)
        answer_text = response.response or ""
        talk = list(calls.ended[-1].messages) + [
            ChatMessage(role=MessageRole.ASSISTANT, content=answer_text),
            ChatMessage(role=MessageRole.USER, content=short_prompt(item)),
        ]
        t1 = time.perf_counter()
        short_reply = short_llm.chat(talk).message.content or ""
        short_s = time.perf_counter() - t1
        talk += [
            ChatMessage(role=MessageRole.ASSISTANT, content=short_reply),
            ChatMessage(role=MessageRole.USER, content=choose_prompt(item)),
        ]
        t2 = time.perf_counter()
        choice_reply = choose_llm.chat(talk).message.content or ""
        choose_s = time.perf_counter() - t2
        total_s = time.perf_counter() - t0

        context = " ".join(node.get_content() for node in response.source_nodes)
        row = {
            "id": item.id,
            "question": item.question,
            "answer": answer_text,
            "short_reply": short_reply,
            "choice_reply": choice_reply,
            "gold": list(item.answers),
            "gold_index": item.answer_index,
            **score(item, short_reply=short_reply, choice_reply=choice_reply, context=context),
            "total_s": round(total_s, 3),
            "answer_s": round(answer_s, 3),
            "short_s": round(short_s, 3),
            "choose_s": round(choose_s, 3),
            "calls": len(calls.ended),
            "answer_calls": answer_calls,
            "prompt_tokens": [e.response.additional_kwargs.get("prompt_tokens") for e in calls.ended],
            "completion_tokens": [e.response.additional_kwargs.get("completion_tokens") for e in calls.ended],
            # llama.cpp's own count of the prompt tokens it read and those its prefix cache covered
            "prompt_read": [engine_timings(e.response.raw).get("prompt_n") for e in calls.ended],
            "prompt_cached": [engine_timings(e.response.raw).get("cache_n") for e in calls.ended],
            "sources": [node.node.ref_doc_id for node in response.source_nodes],  # qa article ids
        }
        rows.append(row)
        log(
            f"[{n}/{len(items)}] {item.id}: {total_s:.1f} s ({answer_s:.1f} s answer), "
            f"mc {row.get('mc')}, em {row.get('em')}"
        )
    return rows, engine_model


if __name__ == "__main__":
    main()
