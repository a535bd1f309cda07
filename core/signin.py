"""Sign-in, when the owner turns it on: accounts of this server in a file (APP_USERS, checked by
Gradio's login page), or Hugging Face accounts on a Space (SIGN_IN=huggingface). A signed-in
user's library is theirs from any browser (`core.library.owners.user_owner`).

The accounts file holds one `name:password` line per person (blank lines and lines starting
with # are skipped). Passwords are compared in constant time and never written anywhere: an
error about the file names its line, never what the line holds.
"""

from __future__ import annotations

import hmac
import importlib.util
import logging
import os
import stat
from pathlib import Path
from typing import Callable

from .config import SERVER_SETTINGS
from .errors import AppError
from .i18n import visitor_forms
from .library.owners import MAX_NAME, user_owner

# Said at start to the owner; a visitor, should one ever be shown one, learns no setting or path.
visitor_forms({template: SERVER_SETTINGS for template in (
    "APP_USERS: {path} is over 1 MB; it should hold name:password lines.",
    "APP_USERS: cannot read {path} ({why}).",
    "APP_USERS: line {n} of {path} is not name:password.",
    "APP_USERS: the name on line {n} of {path} must be at most {max} printable characters.",
    "APP_USERS: line {n} of {path} names someone already named above.",
    "APP_USERS: {path} names nobody; write one name:password line per person.",
    "SIGN_IN=huggingface works on a Hugging Face Space; on this machine, use APP_USERS.",
    "SIGN_IN=huggingface needs `hf_oauth: true` in the front matter of the Space's README.",
    "SIGN_IN=huggingface needs gradio's OAuth extra: pip install 'gradio[oauth]'.")})

MAX_FILE_BYTES = 1 << 20  # an accounts file is a few lines; a bigger one is a mistake
NOBODY = os.urandom(32)  # what an unknown name's password is compared with, so it takes as long

log = logging.getLogger(__name__)


def read_users(path: Path) -> dict[str, str]:
    """The accounts of the file: name -> password. An `AppError` naming the line (never its
    content) for a line that is not `name:password`, a name no sign-in can use, or a name twice."""
    try:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise AppError("APP_USERS: {path} is over 1 MB; it should hold name:password lines.", path=str(path))
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AppError("APP_USERS: cannot read {path} ({why}).", path=str(path), why=type(e).__name__) from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, password = line.partition(":")
        name = name.strip()
        if not colon or not name or not password:
            raise AppError("APP_USERS: line {n} of {path} is not name:password.", n=number, path=str(path))
        if user_owner(name) is None:
            raise AppError("APP_USERS: the name on line {n} of {path} must be at most {max} printable characters.",
                           n=number, path=str(path), max=MAX_NAME)
        if name in users:
            raise AppError("APP_USERS: line {n} of {path} names someone already named above.", n=number,
                           path=str(path))
        users[name] = password
    if not users:
        raise AppError("APP_USERS: {path} names nobody; write one name:password line per person.", path=str(path))
    _warn_if_readable(Path(path))
    return users


def _warn_if_readable(path: Path) -> None:
    """A line in the log when other accounts of this machine could read the passwords."""
    try:
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("APP_USERS: %s can be read by other users of this machine (chmod 600 it)", path)
    except OSError:
        pass


def checker(users: dict[str, str]) -> Callable[[str, str], bool]:
    """What Gradio's login calls (`launch(auth=...)`): whether the password is that name's, in
    the same time whether the name exists or not."""
    known = {name: password.encode() for name, password in users.items()}

    def check(name: str, password: str) -> bool:
        expected = known.get(name)
        given = password.encode() if isinstance(password, str) else b""
        return hmac.compare_digest(given, expected if expected is not None else NOBODY) and expected is not None

    return check


def huggingface_ready(environ=None) -> None:
    """An `AppError` unless Hugging Face sign-in can work here: on a Space (as Gradio tells one:
    SYSTEM=spaces and SPACE_ID) with OAuth on (it sets OAUTH_CLIENT_ID and the rest) and with
    gradio's OAuth extra installed. Off a Space, Gradio would sign everyone in as this machine's
    own Hugging Face account."""
    env = os.environ if environ is None else environ
    if env.get("SYSTEM") != "spaces" or not env.get("SPACE_ID"):
        raise AppError("SIGN_IN=huggingface works on a Hugging Face Space; on this machine, use APP_USERS.")
    if not all(env.get(v) for v in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OAUTH_SCOPES", "OPENID_PROVIDER_URL")):
        raise AppError("SIGN_IN=huggingface needs `hf_oauth: true` in the front matter of the Space's README.")
    if not all(importlib.util.find_spec(m) for m in ("authlib", "itsdangerous")):
        raise AppError("SIGN_IN=huggingface needs gradio's OAuth extra: pip install 'gradio[oauth]'.")
