#!/usr/bin/env python3
"""A stand-in SMS web gateway (or HTTP proxy) for tessera's tests.

Listens on 127.0.0.1 on a free port and prints "listening on PORT". Each request it gets is
printed as one JSON line on stdout: method, path, query and form parameters, headers. It
answers every request with --status and --body, after --delay seconds.

With --cert C --key K it speaks HTTPS.

With --echo it appends the request to --body, as gateways do in error replies: the form body,
the Authorization header, the X-Api-Token header and the path with its query string.

With --echo-as ENCODING it appends, after --body, each value the request carried — its form
or query parameters, the user:password of its basic auth, its X-Api-Token header — in one
encoding, as gateways echo requests in their error pages and API answers: html
(html.escape), html-numeric (every character but letters and digits as &#NN;), html-hex
(&#xHH;), json (a JSON string, non-ASCII escaped), url (percent-encoded, upper-case hex),
url-lower, form (quote_plus) or base64. The record's "echoed" lists what it appended.

With --proxy-auth USER:PASS it plays a proxy that demands those credentials: a request
without the matching Proxy-Authorization gets 407; one with it is recorded and answered as
above (the test only needs to see that the request went through the proxy, not a real
upstream).
"""
import argparse
import base64
import html
import json
import re
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if args.proxy_auth:
            want = "Basic " + base64.b64encode(args.proxy_auth.encode()).decode()
            if self.headers.get("Proxy-Authorization") != want:
                self.answer(407, "proxy authentication required",
                            [("Proxy-Authenticate", 'Basic realm="test"')])
                return
        url = urllib.parse.urlsplit(self.path)
        record = {
            "method": self.command,
            "path": self.path,
            "url_path": url.path,
            "query": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
            "form": dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
            else {},
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        text = args.body
        if args.echo_as:
            values = list(record["form"].values()) + list(record["query"].values())
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                values.append(base64.b64decode(auth[6:]).decode("utf-8", "replace"))
            if self.headers.get("X-Api-Token"):
                values.append(self.headers["X-Api-Token"])
            record["echoed"] = [ENCODINGS[args.echo_as](v) for v in values]
            text = " ".join([text] + record["echoed"])
        print(json.dumps(record), flush=True)
        if args.delay:
            time.sleep(args.delay)
        if args.echo:
            text = " ".join([text, body, self.headers.get("Authorization", ""),
                             self.headers.get("X-Api-Token", ""), self.path])
        self.answer(args.status, text, [])

    def answer(self, status, text, headers):
        data = text.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = handle_any
    do_POST = handle_any


ENCODINGS = {
    "html": lambda v: html.escape(v, quote=True),
    "html-numeric": lambda v: "".join(
        c if c.isascii() and c.isalnum() else f"&#{ord(c)};" for c in v),
    "html-hex": lambda v: "".join(
        c if c.isascii() and c.isalnum() else f"&#x{ord(c):X};" for c in v),
    "json": json.dumps,
    "url": lambda v: urllib.parse.quote(v, safe=""),
    "url-lower": lambda v: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                                  urllib.parse.quote(v, safe="")),
    "form": lambda v: urllib.parse.quote_plus(v, safe=""),
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
}


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--body", default="OK")
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--echo", action="store_true")
    p.add_argument("--echo-as", choices=sorted(ENCODINGS))
    p.add_argument("--proxy-auth")
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
