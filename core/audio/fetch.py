"""Media URLs: a media file, or the audio of a video-site page (yt-dlp), fetched safely.

A server fetching URLs for strangers must not become their way into its own network. Only http
and https are accepted. Every host is resolved here and every address it resolves to must be a
public one (not loopback, private, link-local, shared, multicast or reserved); the connection is
then made to that checked address, so DNS rebinding cannot swap in another, and the same checks
run again on every redirect. ALLOW_PRIVATE_URLS lifts the address check for self-hosters.
Downloads stream to disk under a size cap and a time limit.

yt-dlp resolves names, follows redirects and opens further URLs (APIs, embeds, manifests) on its
own, so checking the page's host is not enough: every connection it opens goes through
`_GuardedProxy`, which makes the same checks on each. The stream it picks is then fetched here
like any media URL, and only if it is a plain file: ffmpeg would fetch a playlist's parts unchecked.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import select
import socket
import socketserver
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from ..config import Settings
from ..errors import AppError
from ..i18n import Text, visitor_forms
from ..exports import safe_stem

MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 15.0  # seconds to open a connection
READ_TIMEOUT = 60.0  # seconds without a byte before giving up
RELAY_BLOCK = 64 * 1024  # bytes copied at a time by the proxy yt-dlp goes through
MEDIA_EXTENSIONS = {"mp3", "m4a", "wav", "ogg", "oga", "opus", "flac", "webm", "mp4", "mov", "mkv", "aac",
                    "avi", "wma", "mpga", "mpeg", "m4v", "3gp"}


class UrlRefused(AppError):
    """A URL the app will not fetch, or could not."""


# For a link that is not a well-formed address: an unclosed IPv6 bracket, a port that is no
# number, an IPv4 address in octal ("0177.0.0.1"), a host name IDNA cannot encode...
MALFORMED = "That link is not a valid web address; check it and paste it again."



# The limits, for a visitor: without the settings that set them.
visitor_forms({
    "The file at that link is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).":
        "The file at that link is {mb:.0f} MB; the limit on this server is {limit:g} MB.",
    "The file at that link is over the {limit:g} MB limit (MAX_FILE_MB).":
        "The file at that link is over this server's {limit:g} MB limit.",
    "The download took longer than {timeout:g} s (URL_TIMEOUT).":
        "The download took longer than this server's limit of {timeout:g} s.",
    "That recording is {minutes:.0f} min long; the limit is {limit:g} min (MAX_DURATION_MINUTES).":
        "That recording is {minutes:.0f} min long; the limit on this server is {limit:g} min.",
})

def check_url(url: str) -> str:
    """`url` stripped, if it is a well-formed http(s) link to a host without credentials; else
    `UrlRefused` saying why. Parsed the way the download will parse it (urllib and httpx), so a
    link that either cannot read is refused here, in words, instead of failing later."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # reading the port checks it
    except ValueError:
        raise UrlRefused(MALFORMED) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlRefused("Only http:// and https:// links can be fetched.")
    if not host:
        raise UrlRefused("That link has no host name.")
    if parts.username or parts.password:
        raise UrlRefused("Links with a user name or password are not fetched.")
    try:
        httpx.URL(url).host  # the host is decoded (IDNA) only when read
    except (httpx.InvalidURL, ValueError):  # what urllib lets through: "0177.0.0.1", "[v1.x]"
        raise UrlRefused(MALFORMED) from None
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
        raise UrlRefused("The host {host} could not be found.", host=host) from None
    except (UnicodeError, ValueError, OverflowError):  # a label IDNA cannot encode ("a..b"), a port past 65535
        raise UrlRefused(MALFORMED) from None
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
                        raise UrlRefused("The link answered with an error ({status}).", status=response.status_code)
                    if _is_page(response) and _headers is None:
                        break  # a web page: perhaps a video site
                    size = int(response.headers.get("content-length") or 0)
                    if size > limit:
                        raise UrlRefused("The file at that link is {mb:.0f} MB; the limit is {limit:g} MB "
                                         "(MAX_FILE_MB).", mb=size / 2**20, limit=settings.max_file_mb)
                    return _save(response, folder / _name_from(response, url), limit, deadline, settings)
            else:
                raise UrlRefused("That link redirects too many times.")
    except httpx.TimeoutException:
        raise UrlRefused("The link took too long to answer.") from None
    except httpx.InvalidURL:  # a redirect is checked by `check_url`: this is for what it may miss
        raise UrlRefused(MALFORMED) from None
    except httpx.HTTPError as e:
        raise UrlRefused("The link could not be fetched ({error}).", error=type(e).__name__) from None
    return _page_audio(url, folder, settings)


def _save(response: httpx.Response, path: Path, limit: int, deadline: float, settings: Settings) -> Path:
    written = 0
    try:
        with open(path, "wb") as f:
            for block in response.iter_bytes():  # as it arrives, so the deadline is checked often
                written += len(block)
                if written > limit:
                    raise UrlRefused("The file at that link is over the {limit:g} MB limit (MAX_FILE_MB).",
                                     limit=settings.max_file_mb)
                if time.monotonic() > deadline:
                    raise UrlRefused("The download took longer than {timeout:g} s (URL_TIMEOUT).",
                                     timeout=settings.url_timeout)
                f.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if written == 0:
        path.unlink(missing_ok=True)
        raise UrlRefused("The file at that link is empty.")
    return path


# A plain file over http(s), audio only if the site has it: a playlist (HLS m3u8, DASH) would be
# fetched piece by piece by ffmpeg, past every check here, so those are never downloaded.
FILE_PROTOCOLS = ("http", "https")
YTDLP_FORMAT = "bestaudio[protocol~='^https?$']/best[protocol~='^https?$']/bestaudio/best"
YTDLP_OPTIONS = {
    "quiet": True, "no_warnings": True, "noplaylist": True, "skip_download": True,
    "format": YTDLP_FORMAT,  # the fallbacks only let `_page_audio` say why there is nothing to fetch
    "allowed_extractors": ["default", "-generic"],  # known sites only: never crawl arbitrary pages
    "socket_timeout": READ_TIMEOUT,
    "logger": logging.getLogger("yt_dlp"),  # its errors go to the log, not to the server's stderr
}


def _page_audio(url: str, folder: Path, settings: Settings) -> Path:
    """A video site's page: yt-dlp finds the audio stream, which is fetched like any media URL."""
    import yt_dlp

    with _GuardedProxy(settings.allow_private_urls) as proxy:
        # `proxy` is used for every request yt-dlp makes, instead of HTTP(S)_PROXY and NO_PROXY.
        try:
            with yt_dlp.YoutubeDL({**YTDLP_OPTIONS, "proxy": proxy.url}) as ydl:
                info = ydl.extract_info(url, download=False)
        except yt_dlp.utils.DownloadError as e:
            if proxy.refused:
                raise UrlRefused(proxy.refused[0]) from None
            reason = (Text("not a page of a video site it knows") if "Unsupported URL" in str(e)
                      else Text("it could not be read"))
            raise UrlRefused("That link is a web page, not a media file, and {reason}.", reason=reason) from None
    if not info or not info.get("url"):
        raise UrlRefused("No audio was found at that link.")
    if info.get("protocol") not in FILE_PROTOCOLS:
        raise UrlRefused("That site streams this recording in pieces (a playlist), which this app does not "
                         "fetch. Download the recording and upload the file instead.")
    duration = info.get("duration")
    if duration and duration > settings.max_duration_minutes * 60:
        raise UrlRefused("That recording is {minutes:.0f} min long; the limit is {limit:g} min "
                         "(MAX_DURATION_MINUTES).", minutes=duration / 60, limit=settings.max_duration_minutes)
    return download(info["url"], folder, settings, _headers=dict(info.get("http_headers") or {}))


def connect_checked(host: str, port: int, allow_private: bool) -> socket.socket:
    """A socket to `host`, opened to an address `resolve` checked (none is looked up again)."""
    last: OSError | None = None
    for address in resolve(host, port, allow_private):
        try:
            sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
        except OSError as e:
            last = e
            continue
        sock.settimeout(READ_TIMEOUT)
        return sock
    raise last or OSError(f"could not connect to {host}")


class _GuardedProxy:
    """A SOCKS5 proxy for yt-dlp that only connects to addresses `resolve` accepts.

    yt-dlp hands it every connection, http and https alike, with the host name (socks5h: names
    are resolved here, not by yt-dlp). It checks each target and answers "not allowed" for an
    internal one, noting why in `refused`. SOCKS rather than an HTTP proxy because Python's
    urllib, under yt-dlp, skips an HTTP proxy for hosts in the environment's NO_PROXY (which
    typically lists the internal ones) and never does for SOCKS. It listens on 127.0.0.1, on a
    free port, only while one extraction runs; other local programs could use it meanwhile, but
    it reaches nothing they could not reach themselves.
    """

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private
        self.refused: list[Text] = []  # messages for the connections refused, first first
        handler = type("Handler", (_SocksHandler,), {"proxy": self})
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"socks5h://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _GuardedProxy:
        threading.Thread(target=self.server.serve_forever, name="yt-dlp proxy", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# SOCKS5 (RFC 1928): the only method offered is "no authentication", the only command CONNECT.
SOCKS_VERSION, SOCKS_NO_AUTH, SOCKS_NO_METHOD, SOCKS_CONNECT = 5, 0, 0xFF, 1
SOCKS_IPV4, SOCKS_NAME, SOCKS_IPV6 = 1, 3, 4  # address types
SOCKS_OK, SOCKS_NOT_ALLOWED, SOCKS_UNREACHABLE, SOCKS_NO_COMMAND, SOCKS_NO_ADDRESS_TYPE = 0, 2, 4, 7, 8  # replies


class _SocksHandler(socketserver.BaseRequestHandler):
    proxy: _GuardedProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(READ_TIMEOUT)
        try:
            target = self._greet(client)
            if target is None:
                return
            upstream = self._connect(client, *target)
            if upstream is not None:
                with upstream:
                    _relay(client, upstream)
        except (OSError, ValueError):
            pass  # the client broke the protocol or went away: nothing was connected for it

    def _greet(self, client: socket.socket) -> tuple[str, int] | None:
        """The target host and port of a CONNECT request, or None once the client was told no."""
        version, count = _recv_exactly(client, 2)
        if version != SOCKS_VERSION or SOCKS_NO_AUTH not in _recv_exactly(client, count):
            client.sendall(bytes([SOCKS_VERSION, SOCKS_NO_METHOD]))
            return None
        client.sendall(bytes([SOCKS_VERSION, SOCKS_NO_AUTH]))
        _, command, _, kind = _recv_exactly(client, 4)
        if kind == SOCKS_IPV4:
            host = socket.inet_ntop(socket.AF_INET, _recv_exactly(client, 4))
        elif kind == SOCKS_IPV6:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exactly(client, 16))
        elif kind == SOCKS_NAME:
            host = _recv_exactly(client, _recv_exactly(client, 1)[0]).decode("idna")
        else:
            _reply(client, SOCKS_NO_ADDRESS_TYPE)
            return None
        port = int.from_bytes(_recv_exactly(client, 2), "big")
        if command != SOCKS_CONNECT:
            _reply(client, SOCKS_NO_COMMAND)
            return None
        return host, port

    def _connect(self, client: socket.socket, host: str, port: int) -> socket.socket | None:
        """The checked connection, or None once the client was told why not."""
        try:
            upstream = connect_checked(host, port, self.proxy.allow_private)
        except UrlRefused as e:
            self.proxy.refused.append(e.text)
            _reply(client, SOCKS_NOT_ALLOWED)
            return None
        except OSError:
            _reply(client, SOCKS_UNREACHABLE)
            return None
        _reply(client, SOCKS_OK)
        return upstream


def _reply(client: socket.socket, status: int) -> None:
    client.sendall(bytes([SOCKS_VERSION, status, 0, SOCKS_IPV4, 0, 0, 0, 0, 0, 0]))  # no bound address to tell


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        block = sock.recv(size - len(data))
        if not block:
            raise ConnectionError("the client closed the connection")
        data += block
    return data


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes, or both stay quiet for READ_TIMEOUT."""
    try:
        while ready := select.select([a, b], [], [], READ_TIMEOUT)[0]:
            for sock in ready:
                data = sock.recv(RELAY_BLOCK)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        pass  # either side went away
