"""`make stack-test`, after test_stack.py: the Compose stack trusts exactly its proxy.

- Two clients behind nginx have two rate-limit buckets: one that has spent its wrong
  tokens gets 429, the other (a client inside the proxy's container, another address)
  still gets in; and neither can pick its address with X-Forwarded-For.
- Over TLS at the proxy (a self-signed certificate, added by a test-only override), the
  sign-in cookie is `Secure`: nginx says https in X-Forwarded-Proto, and the api believes
  it because it comes from the proxy's address.
- Every answer through the proxy carries the security headers.
"""

from __future__ import annotations

import http.cookies
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from digitlab.store.testing_pg import free_port
from tests.stack.conftest import Stack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

TLS_CONF = """server {
    listen 443 ssl;
    ssl_certificate /etc/nginx/tls/cert.pem;
    ssl_certificate_key /etc/nginx/tls/key.pem;
    location / {
        set $api http://api:8000;
        proxy_pass $api;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
"""


def status_of(request: urllib.request.Request, context: ssl.SSLContext | None = None) -> int:
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def from_the_host(stack: Stack, token: str, forwarded_for: str | None = None) -> int:
    request = urllib.request.Request(f"{stack.base}/api/v1/predictions")
    request.add_header("Authorization", f"Bearer {token}")
    if forwarded_for:
        request.add_header("X-Forwarded-For", forwarded_for)
    return status_of(request)


def from_another_container(stack: Stack, token: str) -> str:
    """The answer's status to a client at another address: Python inside the api's
    container (both the official images and the stand-ins have it there; the proxy image
    has no HTTP client in common), through nginx by its service name."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "r = urllib.request.Request('http://proxy/api/v1/predictions')\n"
        "r.add_header('Authorization', 'Bearer ' + sys.argv[1])\n"
        "try:\n"
        "    print(urllib.request.urlopen(r, timeout=30).status)\n"
        "except urllib.error.HTTPError as exc:\n"
        "    print(exc.code)\n"
    )
    return stack.compose("exec", "-T", "api", "python", "-c", script, token, check=False)


@pytest.fixture(scope="module")
def one_replica(stack: Stack) -> Stack:
    # One api process: the buckets live per process, and nginx takes turns between them.
    stack.compose("up", "-d", "--wait", "--scale", "api=1")
    return stack


def test_two_clients_behind_the_proxy_have_two_buckets(one_replica: Stack) -> None:
    stack = one_replica
    viewer = stack.env["DIGITLAB_VIEWER_TOKEN"]
    # A made-up X-Forwarded-For per request: before the fix each was a fresh bucket.
    answers = [from_the_host(stack, f"guess-{i}", f"203.0.113.{i}") for i in range(12)]
    assert 429 in answers, answers
    assert from_the_host(stack, viewer) == 429  # this client is blocked, right token or not
    other = from_another_container(stack, viewer)
    assert other.strip() == "200", other  # the other client is not
    stack.note(f"wrong tokens until 429 through the proxy: {answers.index(429)}")


def test_the_sign_in_cookie_is_secure_over_tls_at_the_proxy(one_replica: Stack) -> None:
    stack = one_replica
    tls = stack.source / "tls"
    tls.mkdir(exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    (tls / "tls.conf").write_text(TLS_CONF)
    port = free_port()
    override = stack.source / "compose.tls.yaml"
    override.write_text(
        "services:\n  proxy:\n    volumes:\n"
        "      - ./tls/tls.conf:/etc/nginx/conf.d/tls.conf:ro\n"
        "      - ./tls:/etc/nginx/tls:ro\n"
        f'    ports:\n      - "{port}:443"\n'
    )
    files = ["-f", "compose.yaml", "-f", override.name]
    stack.compose(*files, "up", "-d", "--wait", "--scale", "api=1", "proxy")
    try:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        body = urllib.parse.urlencode({"token": stack.env["DIGITLAB_VIEWER_TOKEN"]}).encode()
        cookies = {}
        for scheme, where, context in (
            ("https", f"https://127.0.0.1:{port}", insecure),
            ("http", stack.base, None),
        ):
            opener = urllib.request.build_opener(
                urllib.request.HTTPSHandler(context=context), NoRedirect()
            )
            # The test before spends this address's wrong-token bucket on purpose: a 429
            # (the right token too, for a second) is waited out as its Retry-After says.
            for _ in range(5):
                request = urllib.request.Request(f"{where}/login", data=body, method="POST")
                try:
                    opener.open(request, timeout=30)
                except urllib.error.HTTPError as exc:  # the 303 to `next`
                    if exc.code == 429:
                        time.sleep(int(exc.headers["Retry-After"]) + 0.5)
                        continue
                    assert exc.code == 303, exc.read()
                    cookies[scheme] = exc.headers["Set-Cookie"]
                    break
            else:
                pytest.fail(f"sign-in over {scheme} still refused with 429 after 5 tries")
        parsed = http.cookies.SimpleCookie(cookies["https"])
        assert parsed["digitlab_viewer"]["secure"], cookies["https"]
        assert not http.cookies.SimpleCookie(cookies["http"])["digitlab_viewer"]["secure"]
    finally:
        stack.compose("up", "-d", "--wait", "--scale", "api=1", "proxy")  # without TLS


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.parametrize("path", ["/", "/login", "/docs", "/api/v1/predictions", "/nope"])
def test_answers_through_the_proxy_carry_the_security_headers(
    one_replica: Stack, path: str
) -> None:
    request = urllib.request.Request(f"{one_replica.base}{path}")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            headers = resp.headers
    except urllib.error.HTTPError as exc:
        headers = exc.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
