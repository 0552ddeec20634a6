"""A small web server on loopback for fetch and feed tests, and a minimal PDF writer.

`Site` serves routes set by the test (status, headers, body, delay), counts requests per path
and answers conditional GETs (ETag / Last-Modified) for routes that offer them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: a slow server
    etag: bool = False  # offer an ETag and answer If-None-Match with 304
    last_modified: str = ""  # offer Last-Modified and answer If-Modified-Since with 304
    length: bool = True  # False: no Content-Length, the body ends when the connection closes


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: list[str] = []
        self.conditional: list[str] = []  # paths asked with If-None-Match / If-Modified-Since
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path
                site.hits[path] += 1
                site.user_agents.append(self.headers.get("User-Agent", ""))
                route = site.routes.get(path)
                if route is None:
                    return self._send(404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>")
                if route.delay:
                    time.sleep(route.delay)
                headers = {"Content-Type": route.content_type, **route.headers}
                tag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"' if route.etag else ""
                if tag:
                    headers["ETag"] = tag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                asked_tag, asked_date = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                if asked_tag or asked_date:
                    site.conditional.append(path)
                if (tag and asked_tag == tag) or (route.last_modified and asked_date == route.last_modified):
                    return self._send(304, {k: v for k, v in headers.items() if k != "Content-Type"}, b"")
                if not route.length:
                    headers["Content-Length"] = ""  # marker: _send leaves the length out
                self._send(route.status, headers, route.body)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        if value:
                            self.send_header(name, value)
                    if "Content-Length" not in headers and status != 304:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if status != 304:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout or size limit under test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: str | bytes = b"", **kw: object) -> str:
        self.routes[path] = Route(body=body.encode() if isinstance(body, str) else body, **kw)  # type: ignore[arg-type]
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        return self.add(path, b"", status=status, headers={"Location": to})


@pytest.fixture
def site():
    s = Site()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/article"


# ---- pages ---------------------------------------------------------------------------------------

STORY = (
    "The harbour authority approved a plan on Tuesday to rebuild the northern breakwater after winter "
    "storms cracked it in three places. Engineers said the work would cost 42 million euros and take two "
    "years. Fishing crews will keep access to the inner basin during construction, the authority said. "
    "Local councillors welcomed the decision but asked for a public report on the delays. The breakwater "
    "protects about four hundred homes on the waterfront from flooding, according to the city survey. "
    "Repairs to the lighthouse at its end are part of the same contract, which goes to tender in March."
)


def article_html(
    title: str = "Harbour breakwater to be rebuilt",
    body: str = STORY,
    *,
    canonical: str = "",
    og_url: str = "",
    published: str = "2026-01-12T09:30:00+01:00",
    site_name: str = "Coast Courier",
    author: str = "Ana Ruiz",
) -> str:
    head = [
        f"<title>{title} | {site_name}</title>",
        f'<meta property="og:site_name" content="{site_name}">',
        f'<meta name="author" content="{author}">',
    ]
    if canonical:
        head.append(f'<link rel="canonical" href="{canonical}">')
    if og_url:
        head.append(f'<meta property="og:url" content="{og_url}">')
    if published:
        head.append(f'<meta property="article:published_time" content="{published}">')
    paragraphs = "".join(f"<p>{s.strip()}.</p>" for s in body.split(". ") if s.strip())
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{''.join(head)}</head><body>"
        f"<nav><a href='/'>Home</a> <a href='/sport'>Sport</a></nav><article><h1>{title}</h1>{paragraphs}"
        f"</article><footer>© 2019 {site_name}. All rights reserved.</footer></body></html>"
    )


def make_pdf(lines: list[str], *, title: str = "", author: str = "", created: str = "") -> bytes:
    """A one-page PDF with Helvetica text lines and an Info dictionary; offsets computed for the xref."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 11 Tf 14 TL 50 780 Td " + " ".join(f"({esc(line)}) Tj T*" for line in lines) + " ET"
    info = " ".join(
        f"/{k} ({esc(v)})" for k, v in (("Title", title), ("Author", author), ("CreationDate", created)) if v
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 4 0 R >> >> "
        "/Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream",
        f"<< {info} >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
