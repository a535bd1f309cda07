"""Media URLs: a media file, or the audio of a video-site page (yt-dlp), fetched safely.

A server fetching URLs for strangers must not become their way into its own network. Only http
and https are accepted. Every host is resolved here and every address it resolves to must be a
public one (not loopback, private, link-local, shared, multicast or reserved); the connection is
then made to that checked address, so DNS rebinding cannot swap in another, and the same checks
run again on every redirect. ALLOW_PRIVATE_URLS lifts the address check for self-hosters.
Downloads stream to disk under a size cap and a time limit.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from .config import Settings
from .errors import AppError
from .transcript import safe_stem

MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 15.0  # seconds to open a connection
READ_TIMEOUT = 60.0  # seconds without a byte before giving up
MEDIA_EXTENSIONS = {"mp3", "m4a", "wav", "ogg", "oga", "opus", "flac", "webm", "mp4", "mov", "mkv", "aac",
                    "avi", "wma", "mpga", "mpeg", "m4v", "3gp"}


class UrlRefused(AppError):
    """A URL the app will not fetch, or could not."""


def check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlRefused("Only http:// and https:// links can be fetched.")
    if not parts.hostname:
        raise UrlRefused("That link has no host name.")
    if parts.username or parts.password:
        raise UrlRefused("Links with a user name or password are not fetched.")
    return url


def check_address(address: str, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not allow_private and (not ip.is_global or ip.is_multicast or ip.is_reserved):
        raise UrlRefused("That link points to a private or internal address, which this server does not fetch.")


def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """Every address of `host`, each checked; refused if any one is internal."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UrlRefused(f"The host {host} could not be found.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        check_address(address, allow_private)
    return addresses


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to checked addresses, and checks the one it actually reached."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        last: Exception | None = None
        for address in resolve(host, port, self.allow_private):
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as e:
                last = e
                continue
            peer = stream.get_extra_info("socket").getpeername()[0]
            try:
                check_address(peer, self.allow_private)
            except UrlRefused:
                stream.close()
                raise
            return stream
        raise last or httpcore.ConnectError(f"could not connect to {host}")


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool):
        super().__init__()
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=_GuardedBackend(allow_private))


def client(settings: Settings) -> httpx.Client:
    return httpx.Client(transport=_GuardedTransport(settings.allow_private_urls), follow_redirects=False,
                        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                        headers={"User-Agent": "talk-to-your-audio/1 (+media fetch)"})


def _name_from(response: httpx.Response, url: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    m = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)", disposition, re.IGNORECASE)
    name = unquote(m[1]) if m else unquote(Path(urlsplit(url).path).name)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    stem = safe_stem(name, default="media")
    return f"{stem}.{ext}" if ext in MEDIA_EXTENSIONS else f"{stem}.media"


def _is_page(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype in ("text/html", "application/xhtml+xml")


def download(url: str, folder: Path, settings: Settings, *, _headers: dict | None = None) -> Path:
    """Fetch a media URL (or a video-site page's audio) into `folder`; return the file."""
    url = check_url(url)
    limit = int(settings.max_file_mb * 1024 * 1024)
    deadline = time.monotonic() + settings.url_timeout
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with client(settings) as http:
            for _ in range(MAX_REDIRECTS + 1):
                with http.stream("GET", url, headers=_headers) as response:
                    if response.is_redirect:
                        url = check_url(urljoin(url, response.headers.get("location", "")))
                        continue
                    if response.status_code >= 400:
                        raise UrlRefused(f"The link answered with an error ({response.status_code}).")
                    if _is_page(response) and _headers is None:
                        break  # a web page: perhaps a video site
                    size = int(response.headers.get("content-length") or 0)
                    if size > limit:
                        raise UrlRefused(f"The file at that link is {size / 2**20:.0f} MB; the limit is "
                                         f"{settings.max_file_mb:g} MB (MAX_FILE_MB).")
                    return _save(response, folder / _name_from(response, url), limit, deadline, settings)
            else:
                raise UrlRefused("That link redirects too many times.")
    except httpx.TimeoutException:
        raise UrlRefused("The link took too long to answer.") from None
    except httpx.HTTPError as e:
        raise UrlRefused(f"The link could not be fetched ({type(e).__name__}).") from None
    return _page_audio(url, folder, settings)


def _save(response: httpx.Response, path: Path, limit: int, deadline: float, settings: Settings) -> Path:
    written = 0
    try:
        with open(path, "wb") as f:
            for block in response.iter_bytes():  # as it arrives, so the deadline is checked often
                written += len(block)
                if written > limit:
                    raise UrlRefused(f"The file at that link is over the {settings.max_file_mb:g} MB limit "
                                     "(MAX_FILE_MB).")
                if time.monotonic() > deadline:
                    raise UrlRefused(f"The download took longer than {settings.url_timeout:g} s (URL_TIMEOUT).")
                f.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if written == 0:
        path.unlink(missing_ok=True)
        raise UrlRefused("The file at that link is empty.")
    return path


def _page_audio(url: str, folder: Path, settings: Settings) -> Path:
    """A video site's page: yt-dlp finds the audio stream, which is fetched like any media URL."""
    import yt_dlp

    parts = urlsplit(url)
    resolve(parts.hostname or "", parts.port or 443, settings.allow_private_urls)
    options = {
        "quiet": True, "no_warnings": True, "noplaylist": True, "skip_download": True,
        "format": "bestaudio/best",  # audio only when the site offers it
        "allowed_extractors": ["default", "-generic"],  # known sites only: never crawl arbitrary pages
        "socket_timeout": READ_TIMEOUT,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as e:
        reason = "not a page of a video site it knows" if "Unsupported URL" in str(e) else "it could not be read"
        raise UrlRefused(f"That link is a web page, not a media file, and {reason}.") from None
    if not info or not info.get("url"):
        raise UrlRefused("No audio was found at that link.")
    duration = info.get("duration")
    if duration and duration > settings.max_duration_minutes * 60:
        raise UrlRefused(f"That recording is {duration / 60:.0f} min long; the limit is "
                         f"{settings.max_duration_minutes:g} min (MAX_DURATION_MINUTES).")
    return download(info["url"], folder, settings, _headers=dict(info.get("http_headers") or {}))
