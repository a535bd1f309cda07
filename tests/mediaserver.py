"""A local web server for media-URL tests: files, redirects, pages, slow and endless bodies.

It listens on 127.0.0.1 unless told otherwise; a second one on 127.0.0.2 (also loopback on Linux)
stands for a host inside the server's network, which nothing may reach.
"""

from __future__ import annotations

import threading
import time
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit


class MediaServer:
    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root = root
        self.hits: list[str] = []
        handler = type("Handler", (_Handler,), {"media": self})
        self.httpd = ThreadingHTTPServer((host, 0), handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    media: MediaServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.media.hits.append(path)
        if path.startswith("/files/"):
            file = self.media.root / path.removeprefix("/files/")
            if not file.is_file():
                return self._plain(404, b"not found")
            data = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif path == "/redirect":  # /redirect?to=<url>&hops=<n>
            query = parse_qs(urlsplit(self.path).query)
            target, hops = query["to"][0], int(query.get("hops", ["1"])[0])
            location = target if hops <= 1 else f"/redirect?{urlencode({'to': target, 'hops': hops - 1})}"
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/page":  # /page?refresh=<url> sends browsers on; /page?video=<url> embeds a video
            query = {k: escape(v[0]) for k, v in parse_qs(urlsplit(self.path).query).items()}
            head = f'<meta http-equiv="refresh" content="0;url={query["refresh"]}">' if "refresh" in query else ""
            video = f'<video controls src="{query["video"]}"></video>' if "video" in query else ""
            page = f"<html><head>{head}</head><body><h1>My podcast</h1><p>Episode 12</p>{video}</body></html>"
            self._plain(200, page.encode(), "text/html")
        elif path == "/endless":  # no Content-Length, never ends
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.end_headers()
            try:
                for _ in range(100_000):
                    self.wfile.write(b"\xff" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/slow":  # a byte now and then
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\xff" * 10)
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self._plain(404, b"not found")

    def _plain(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
