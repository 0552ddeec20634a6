"""The LlamaIndex peers' side in qa's own venv: their virtual environment, and running them cut off.

Importable without llama-index (it lives in bench/.peer-venv only). bench/ingest.py runs the
ingestion peer through `run_peer_script`; bench/answer.py (or any script) gets the query peer's
figures with `run_query_peer`:

    from peer_env import run_query_peer   # with bench/ on sys.path
    figures = run_query_peer(base_url="http://127.0.0.1:41579", api_key=KEY, questions=["20230106_0"])

The peer runs with its network cut (`unshare -rn`, its own loopback up). A network namespace has its
own loopback, so an engine listening on this machine's 127.0.0.1 cannot be reached from inside it;
the filesystem is shared, though, so `EngineRelay` listens on a Unix socket in a temporary folder and
forwards each connection to the engine's host and port, and the peer's HTTP client connects to that
socket. The peer can thus reach the engine and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
PEER_VENV = REPO / "bench" / ".peer-venv"
QUERY_SCRIPT = REPO / "bench" / "peer_query.py"
DEFAULT_DATA = REPO.parent / "shared" / "eval" / "realtimeqa-dev"
# llama-index-core 0.14.x bundles nltk's punkt_tab + stopwords and tiktoken's cl100k file.
# llama-index-llms-openai (which openai-like builds on) and its openai client are pinned too, so a
# rerun resolves the same code.
PEER_PACKAGES = [
    "llama-index-core==0.14.25",
    "llama-index-vector-stores-chroma==0.6.0",
    "llama-index-llms-openai-like==0.8.1",
    "llama-index-llms-openai==0.8.3",
    "openai==2.54.0",
]
# The embedder's own libraries are pinned to the versions in qa's venv, so both run the same code.
# (Not openai: llama-index-llms-openai needs openai<3, qa has 3.x; it is only the HTTP client here.)
SAME_AS_QA = ["chromadb", "onnxruntime", "tokenizers", "numpy", "tiktoken"]
OFFLINE = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
API_KEY_VARIABLE = "PEER_API_KEY"  # the engine's key travels in the environment, not on a command line


def peer_requirements() -> list[str]:
    return PEER_PACKAGES + [f"{name}=={version(name)}" for name in SAME_AS_QA]


def ensure_peer_venv() -> Path:
    """bench/.peer-venv with the pinned peer packages and qa (editable); reinstalled when the pins change."""
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / "bench-requirements.txt"
    wanted = "\n".join(peer_requirements() + ["-e " + str(REPO)]) + "\n"
    if python.exists() and marker.is_file() and marker.read_text() == wanted:
        return python
    print(f"creating the peer environment {PEER_VENV.relative_to(REPO)} (pip install, one time)", flush=True)
    if PEER_VENV.exists():
        shutil.rmtree(PEER_VENV)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *peer_requirements(),
            "-e",
            str(REPO),
        ],
        check=True,
    )
    marker.write_text(wanted)
    return python


def run_peer_script(command: list[str], *, network: bool, env: dict[str, str] | None = None) -> dict:
    """Run a peer (stderr passes through) and parse the JSON line it prints last; exits on failure."""
    if not network:
        if not shutil.which("unshare"):
            sys.exit("`unshare` is missing: cannot cut the peer's network; pass --peer-network to run it anyway")
        command = OFFLINE + command
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    if done.returncode:
        sys.exit(
            f"the LlamaIndex peer failed (exit {done.returncode}); its messages are above"
            + ("" if network else "; if `unshare` is not permitted here, pass --peer-network")
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        sys.exit("the LlamaIndex peer printed no figures; its messages are above")
    figures = json.loads(lines[-1])
    figures["network"] = "allowed" if network else "cut (unshare -rn, loopback only)"
    return figures


class EngineRelay:
    """Forwards connections made to a Unix socket to one TCP address (the engine), in threads.

    `with EngineRelay(("127.0.0.1", 41579), path):` serves until the block ends."""

    def __init__(self, target: tuple[str, int], path: Path):
        self.target, self.path = target, path

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(target) as upstream:
                    back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
                    back.start()
                    _pump(self.request, upstream)
                    back.join()

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(path), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> EngineRelay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until the source closes, then close the sink's sending side."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # the other side went away: the HTTP client reports it
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def engine_address(base_url: str) -> tuple[str, int]:
    """(host, port) of an OpenAI-compatible base URL such as http://127.0.0.1:41579/v1."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        raise ValueError(f"--base-url {base_url!r} has no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def run_query_peer(
    *,
    base_url: str,
    api_key: str,
    data: Path = DEFAULT_DATA,
    limit: int = 0,
    questions: Sequence[str] | None = None,
    threads: int = 0,
    network: bool = False,
    extra: Sequence[str] = (),
) -> dict:
    """Run bench/peer_query.py in the peer venv against the engine at `base_url`; its parsed figures.

    `questions` (RealTimeQA question ids) picks and orders the questions; `limit` keeps the first N.
    The network is cut unless `network` is true; the engine is then reached through an EngineRelay."""
    python = ensure_peer_venv()
    env = dict(os.environ, **{API_KEY_VARIABLE: api_key})
    command = [str(python), str(QUERY_SCRIPT), "--data", str(data), "--base-url", base_url]
    command += ["--limit", str(limit), "--threads", str(threads), *extra]
    with tempfile.TemporaryDirectory(prefix="qa-peer-query-") as tmp:
        if questions is not None:
            ids = Path(tmp) / "questions.json"
            ids.write_text(json.dumps(list(questions)))
            command += ["--questions", str(ids)]
        if network:
            return run_peer_script(command, network=True, env=env)
        sock = Path(tmp) / "engine.sock"
        with EngineRelay(engine_address(base_url), sock):
            return run_peer_script(command + ["--engine-socket", str(sock)], network=False, env=env)
