#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for tessera's tests.

Listens on 127.0.0.1 on a free port and prints "listening on PORT". Each message it accepts
is printed as one JSON line on stdout: envelope sender, recipients and the raw message.

  --cert C --key K     offer STARTTLS with this certificate
  --smtps              with --cert/--key: implicit TLS from the first byte instead
  --auth USER:PASS     require AUTH (PLAIN/LOGIN) with these credentials
"""
import argparse
import asyncio
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Printer:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }), flush=True)
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--smtps", action="store_true")
    p.add_argument("--auth")
    a = p.parse_args()

    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and f"{auth_data.login.decode()}:{auth_data.password.decode()}" == a.auth)
        # handled=False: aiosmtpd then sends the 235/535 reply itself. With the default
        # (True) a failed AUTH gets no reply at all and the client hangs.
        return AuthResult(success=ok, handled=False)

    def factory():
        return SMTP(
            Printer(),
            hostname="127.0.0.1",
            tls_context=None if a.smtps else context,
            authenticator=authenticator if a.auth else None,
            auth_required=bool(a.auth),
            auth_require_tls=False,
        )

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, host="127.0.0.1", port=0, ssl=context if a.smtps else None)
        print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
