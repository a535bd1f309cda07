"""The server's secret, and what it makes: values sealed for visitors' browsers, the names of the
files the page serves, and the ids visitors and agents are given for recordings.

The secret is 32 random bytes kept in the cache folder (`server-secret`, made on first use and
readable by its owner only), so that after a restart the server still opens what browsers hold
and still finds the files and ids it handed out. It never leaves the server: nothing a visitor
gets contains it, or anything it can be computed from.

- `seal` / `unseal`: AES-256-GCM, authenticated encryption, with a fresh random nonce for each
  value and the value's purpose as associated data. A browser holds a string it cannot read; a
  string that was edited, forged, sealed for another purpose or by another server unseals to
  None (nothing), never to a value.
- `name`: a keyed hash (HMAC-SHA256, 128 bits as 32 hex digits) of a value, per purpose: a served
  file's name (a player's copy by the recording's sha256, captions by transcript), which nobody
  can compute from the file alone.
- `public_id`: the same keyed hash of a transcript's cache key. The cache key can be computed
  offline from the file and the settings; the public id cannot. `Jobs.public_id` records the way
  back in the cache (`Cache.put_alias`), and `Jobs.recording` follows it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .cache import TMP_PREFIX

log = logging.getLogger(__name__)

SECRET_FILE = "server-secret"
# Kept by versions that handed it to every visitor as the browser storage's key: it is public,
# so it is removed and never used again.
OLD_PUBLIC_SECRET = "browser-secret"
NONCE_BYTES = 12  # AES-GCM's standard nonce; random per value (2^32 values per key keep collisions negligible)
NAME_HEX = 32  # 128 bits of a keyed hash: names and ids nobody can guess
KEYED = re.compile(rf"[0-9a-f]{{{NAME_HEX}}}")


def kept_secret(root: Path, name: str = SECRET_FILE) -> bytes:
    """A random secret kept in the cache folder, made on first use (created readable by its owner
    only). Without a writable folder, one for this process: what it sealed and named is then lost
    at a restart, and the log says so."""
    path = Path(root) / name
    try:
        if text := path.read_text(encoding="ascii").strip():
            return text.encode("ascii")
    except (OSError, UnicodeDecodeError):
        pass
    text = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)  # mode 0600
        with open(fd, "w", encoding="ascii") as f:
            f.write(text)
        Path(tmp).replace(path)
    except OSError:
        log.warning("could not keep the server's secret in the cache folder: visitors' recent recordings "
                    "and the recordings' ids last until a restart")
    return text.encode("ascii")


def _subkey(secret: bytes, use: str) -> bytes:
    """One key per use, derived from the secret (HMAC-SHA256 as a PRF), so no two uses share a key."""
    return hmac.new(secret, f"talk-to-your-audio/{use}".encode(), hashlib.sha256).digest()


class ServerKey:
    """Seals values and makes keyed names with one server's secret (see the module docstring)."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the server's secret is too short")
        self._aead = AESGCM(_subkey(secret, "seal"))
        self._names = _subkey(secret, "names")

    @classmethod
    def kept(cls, root: Path) -> "ServerKey":
        """The key of the cache folder `root` (made on first use); the old public one is removed."""
        old = Path(root) / OLD_PUBLIC_SECRET
        try:
            old.unlink()
            log.info("removed %s: earlier versions sent it to every visitor", OLD_PUBLIC_SECRET)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("could not remove %s (%s); it is no longer used", OLD_PUBLIC_SECRET, type(e).__name__)
        return cls(kept_secret(root))

    def seal(self, value: object, purpose: str) -> str:
        """`value` (anything JSON can hold) as an opaque string only this server can open, and
        only for the same `purpose`."""
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, purpose.encode())
        return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def unseal(self, token: object, purpose: str) -> object | None:
        """What `seal` sealed for `purpose`; None for anything else (not a string, edited,
        forged, sealed for another purpose or with another key)."""
        if not isinstance(token, str) or not token:
            return None
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], purpose.encode())
            return json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None

    def name(self, purpose: str, value: str) -> str:
        """A keyed hash of `value` for `purpose`: 32 hex digits, the same on every call and
        restart, which nobody without the secret can compute or link to `value`."""
        message = f"{purpose}\0{value}".encode()
        return hmac.new(self._names, message, hashlib.sha256).hexdigest()[:NAME_HEX]

    def public_id(self, internal_id: str) -> str:
        """The id visitors and agents are given for the transcript whose cache key is `internal_id`."""
        return self.name("recording", internal_id)


def is_keyed(text: object) -> bool:
    """Whether `text` has the shape of a keyed name or public id (32 lowercase hex digits)."""
    return isinstance(text, str) and KEYED.fullmatch(text) is not None


def is_served_name(name: str) -> bool:
    """A file name the page may serve from the media folder: a keyed name with its suffixes
    (`<32 hex>.mp3`, `<32 hex>.mono48k.mp3`, `<32 hex>.vtt`). Names of earlier versions (the
    recording's plain sha256, a transcript's cache key) are never served."""
    stem, dot, suffixes = (name or "").partition(".")
    return is_keyed(stem) and bool(dot) and re.fullmatch(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8})?", suffixes) is not None
