"""A cookie-keeping wrapper over chalice.test.Client, like a browser tab."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebSession:
    def __init__(self, client, accept_language: str = "en") -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.accept_language = accept_language
        self.last_body = ""

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept-Language": self.accept_language}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _keep(self, response):
        raw = response.headers.get("Set-Cookie") or response.headers.get("set-cookie")
        for line in [raw] if isinstance(raw, str) else list(raw or []):
            jar = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        body = response.body
        self.last_body = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        return response

    def get(self, path: str, headers: dict[str, str] | None = None):
        return self._keep(self.client.http.get(path, headers=self._headers(headers)))

    def post(self, path: str, data: dict[str, str] | None = None, csrf: str | None = "auto"):
        fields = dict(data or {})
        if csrf == "auto":
            fields["csrf_token"] = self.csrf()
        elif csrf is not None:
            fields["csrf_token"] = csrf
        headers = self._headers({"Content-Type": "application/x-www-form-urlencoded"})
        return self._keep(self.client.http.post(path, headers=headers, body=urlencode(fields)))

    def post_raw(self, path: str, body: bytes, content_type: str):
        headers = self._headers({"Content-Type": content_type})
        return self._keep(self.client.http.post(path, headers=headers, body=body))

    def csrf(self) -> str:
        match = _CSRF.search(self.last_body)
        if not match:
            self.get("/")
            match = _CSRF.search(self.last_body)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def text(self) -> str:
        return self.last_body
