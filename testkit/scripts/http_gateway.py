#!/usr/bin/env python3
"""A stand-in SMS web gateway (or HTTP proxy) for tessera's tests.

Listens on 127.0.0.1 on a free port and prints "listening on PORT". Each request it gets is
printed as one JSON line on stdout: method, path, query and form parameters, headers. It
answers every request with --status and --body, after --delay seconds.

With --cert C --key K it speaks HTTPS.

With --echo it appends the request to --body, as gateways do in error replies: the form body,
the Authorization header, the X-Api-Token header and the path with its query string.

With --proxy-auth USER:PASS it plays a proxy that demands those credentials: a request
without the matching Proxy-Authorization gets 407; one with it is recorded and answered as
above (the test only needs to see that the request went through the proxy, not a real
upstream).
"""
import argparse
import base64
import json
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
        print(json.dumps(record), flush=True)
        if args.delay:
            time.sleep(args.delay)
        text = args.body
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


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--body", default="OK")
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--echo", action="store_true")
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
