"""GraphiQL for browsers, from files bundled at install time (no CDN).

`gateway/graphiql/build.sh` bundles the npm `graphiql` package into
`static/graphiql/`: an `index.html` and hashed app, style and Monaco worker
files, each beside a gzipped copy. The gateway answers a browser's GET
/graphql with the page and serves the rest under /graphiql/: the gzipped copy
when the client accepts gzip, hashed files cacheable for a year. Without the
built files the JSON API works as ever and the page says how to build them.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

DEFAULT_DIR = Path(__file__).parent / "static" / "graphiql"
IMMUTABLE = "public, max-age=31536000, immutable"
# Everything the page loads comes from the gateway itself; `{connect}` adds the
# same host's WebSocket URL (subscriptions), named outright since not every browser
# counts ws:// as 'self'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'{connect}; "
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
# A Host header fit to be named in the policy: a name or address and maybe a port.
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
}
# name-HASH.ext as esbuild writes them: no path separators, nothing else served
_ASSET = re.compile(r"[A-Za-z0-9_.]+-[A-Z0-9]{8}(\.[a-z0-9]+)")

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL is not built</title></head>
<body style="font: 16px system-ui, sans-serif; max-width: 44em; margin: 3em auto">
<h1>GraphiQL is not built</h1>
<p>This gateway serves GraphiQL from files bundled at install time, and they are
missing here. Build them (Node.js 20+ and npm, as a build tool only) with</p>
<pre>gateway/graphiql/build.sh</pre>
<p>or <code>make install</code> from the repository root, then reload this page.
No restart is needed.</p>
<p>The GraphQL API itself works: POST JSON to this URL. The schema is at
<a href="schema.graphql">schema.graphql</a>.</p>
</body></html>
"""


def wants_page(request: Request) -> bool:
    """A browser navigating to the endpoint (HTML accepted, JSON not asked for)."""
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and "json" not in accept


def content_security_policy(request: Request) -> str:
    """The page's policy, letting it open a WebSocket to the host it was loaded from
    (wss:// too: behind a TLS proxy the gateway itself sees http)."""
    host = request.headers.get("host", "")
    if not _HOST.fullmatch(host):
        return CONTENT_SECURITY_POLICY.format(connect="")
    return CONTENT_SECURITY_POLICY.format(connect=f" ws://{host} wss://{host}")


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


def _file(request: Request, path: Path, media_type: str, headers: dict[str, str]) -> Response:
    headers = {**headers, "Vary": "Accept-Encoding"}
    compressed = path.with_name(path.name + ".gz")
    if _accepts_gzip(request) and compressed.is_file():
        headers["Content-Encoding"] = "gzip"
        return FileResponse(compressed, headers=headers, media_type=media_type)
    return FileResponse(path, headers=headers, media_type=media_type)


class GraphiQLFiles:
    """The built GraphiQL files in `directory`, read at each request (a rebuild needs no restart)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or DEFAULT_DIR

    @property
    def built(self) -> bool:
        return (self.directory / "index.html").is_file()

    def page(self, request: Request) -> Response:
        if not self.built:
            return HTMLResponse(NOT_BUILT, 503, headers={"Cache-Control": "no-store"})
        headers = {
            "Cache-Control": "no-cache",  # names the current hashed files: revalidate
            "Content-Security-Policy": content_security_policy(request),
            "X-Content-Type-Options": "nosniff",
        }
        return _file(request, self.directory / "index.html", "text/html; charset=utf-8", headers)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        match = _ASSET.fullmatch(name)
        media_type = _MEDIA_TYPES.get(match.group(1)) if match else None
        path = self.directory / name
        if media_type is None or not path.is_file():
            return PlainTextResponse("Not Found\n", 404)
        headers = {"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
        return _file(request, path, media_type, headers)
