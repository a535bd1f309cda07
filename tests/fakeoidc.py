"""A small OpenID Connect provider for the tests, on 127.0.0.1: what Hugging Face's sign-in is
to a Space, so that the app's "Sign in with Hugging Face" runs offline through Gradio's real
OAuth routes and authlib.

It serves the discovery document, the authorization endpoint (which signs in `user` at once,
as if they had pressed "Authorize", and sends the browser back with a code), the token endpoint
(an access token and an RS256 id token with the nonce the app asked for, signed with a key made
at start) and that key's JWKS. It checks what a real provider checks: the client's id and
secret, the redirect URI given with the code, and that a code is used once.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import RSAKey


class FakeOIDC:
    def __init__(self, client_id: str = "space-client", client_secret: str = "space-secret"):
        self.client_id, self.client_secret = client_id, client_secret
        self.user = "ana-hf"  # who signs in next
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.codes: dict[str, dict] = {}
        self.tokens_issued = 0
        self.httpd: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> str:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                provider.get(self)

            def do_POST(self):
                provider.post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def metadata(self) -> dict:
        return {"issuer": self.url, "authorization_endpoint": f"{self.url}/oauth/authorize",
                "token_endpoint": f"{self.url}/oauth/token", "jwks_uri": f"{self.url}/oauth/jwks",
                "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public"]}

    def get(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/.well-known/openid-configuration":
            return _json(h, 200, self.metadata())
        if url.path == "/oauth/jwks":
            return _json(h, 200, {"keys": [self.key.as_dict(private=False)]})
        if url.path == "/oauth/authorize":
            if query.get("client_id") != self.client_id or query.get("response_type") != "code":
                return _json(h, 400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"user": self.user, "nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"]}
            back = query["redirect_uri"]
            back += ("&" if "?" in back else "?") + urllib.parse.urlencode({"code": code, "state": query["state"]})
            h.send_response(302)
            h.send_header("Location", back)
            h.end_headers()
            return None
        return _json(h, 404, {"error": "not_found"})

    def post(self, h: BaseHTTPRequestHandler) -> None:
        if urllib.parse.urlsplit(h.path).path != "/oauth/token":
            return _json(h, 404, {"error": "not_found"})
        form = dict(urllib.parse.parse_qsl(h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()))
        basic = h.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", urllib.parse.unquote(cid))
            form.setdefault("client_secret", urllib.parse.unquote(secret))
        grant = self.codes.pop(form.get("code", ""), None)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return _json(h, 401, {"error": "invalid_client"})
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return _json(h, 400, {"error": "invalid_grant"})
        now = int(time.time())
        claims = {"iss": self.url, "sub": f"id-{grant['user']}", "aud": self.client_id, "iat": now,
                  "exp": now + 3600, "preferred_username": grant["user"], "name": grant["user"].title()}
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        self.tokens_issued += 1
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        return _json(h, 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                              "expires_in": 3600, "scope": "openid profile", "id_token": id_token})


def _json(h: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
