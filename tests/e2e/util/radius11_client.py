#!/usr/bin/env python3
"""An independent RadSec / RADIUS/1.1 client for the tests (Python's ssl, not rustls).

Connects with a client certificate, offers the ALPN names given (or none), sends one
Access-Request and prints one JSON line describing the reply:

- RADIUS/1.1 (RFC 9765) when the server picked "radius/1.1": Reserved-1 zero, a 4-octet Token,
  Reserved-2 zero, User-Password in the clear, no Message-Authenticator;
- RadSec (RFC 6614) otherwise: Identifier and Request Authenticator, User-Password hidden
  with the secret "radsec", Message-Authenticator; the reply's authenticators are checked.
"""

import argparse
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct


def attribute(typ, value):
    return bytes([typ, len(value) + 2]) + value


def hide(password, authenticator, secret):
    padded = password + b"\0" * (-len(password) % 16) if password else bytes(16)
    out, previous = b"", authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + previous).digest()
        block = bytes(p ^ k for p, k in zip(padded[i:i + 16], key))
        out += block
        previous = block
    return out


def parse_attributes(body):
    attrs, i = [], 0
    while i + 2 <= len(body):
        typ, length = body[i], body[i + 1]
        attrs.append((typ, body[i + 2:i + length]))
        i += max(length, 2)
    return attrs


def read_packet(tls):
    data = b""
    while len(data) < 4:
        chunk = tls.recv(4 - len(data))
        if not chunk:
            return None
        data += chunk
    length = struct.unpack("!H", data[2:4])[0]
    while len(data) < length:
        chunk = tls.recv(length - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--alpn", default="radius/1.1", help="comma-separated; 'none' for none")
    parser.add_argument("--tls12", action="store_true", help="offer TLS 1.2 only")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--state", default="", help="hex")
    parser.add_argument("--with-message-authenticator", action="store_true",
                        help="RADIUS/1.1: send one anyway (the server must ignore it)")
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    if args.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.alpn != "none":
        context.set_alpn_protocols(args.alpn.split(","))
    result = {}
    try:
        raw = socket.create_connection(("127.0.0.1", args.port), timeout=5)
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    except (ssl.SSLError, OSError) as e:
        print(json.dumps({"error": str(e)}))
        return
    alpn = tls.selected_alpn_protocol()
    result["alpn"] = alpn
    secret = b"radsec"
    v11 = alpn == "radius/1.1"
    password = args.password.encode()
    if v11:
        token = os.urandom(4)
        header_id, authenticator = 0, token + bytes(12)
        attrs = attribute(1, args.user.encode()) + attribute(2, password)
        if args.with_message_authenticator:
            attrs = attribute(80, bytes(16)) + attrs
    else:
        header_id, authenticator = os.urandom(1)[0], os.urandom(16)
        attrs = attribute(1, args.user.encode()) + attribute(2, hide(password, authenticator, secret))
    if args.state:
        attrs += attribute(24, bytes.fromhex(args.state))
    if not v11:
        attrs = attribute(80, bytes(16)) + attrs
    length = 20 + len(attrs)
    packet = bytes([1, header_id]) + struct.pack("!H", length) + authenticator + attrs
    if not v11:
        mac = hmac.new(secret, packet, hashlib.md5).digest()
        packet = packet[:22] + mac + packet[38:]
    try:
        tls.sendall(packet)
        reply = read_packet(tls)
    except (ssl.SSLError, OSError) as e:
        result["error"] = str(e)
        print(json.dumps(result))
        return
    if reply is None:
        result["error"] = "closed"
        print(json.dumps(result))
        return
    code, ident = reply[0], reply[1]
    body = reply[20:]
    attributes = parse_attributes(body)
    result["code"] = code
    result["attributes"] = [[t, v.hex()] for t, v in attributes]
    result["has_message_authenticator"] = any(t == 80 for t, _ in attributes)
    result["reply_message"] = b"".join(v for t, v in attributes if t == 18).decode("utf-8", "replace")
    result["state"] = next((v.hex() for t, v in attributes if t == 24), "")
    if v11:
        result["reserved1"] = ident
        result["token_echoed"] = reply[4:8] == token
        result["reserved2_zero"] = reply[8:20] == bytes(12)
    else:
        expected = hashlib.md5(reply[:4] + authenticator + body + secret).digest()
        result["response_authenticator_ok"] = reply[4:20] == expected and ident == header_id
    print(json.dumps(result))


if __name__ == "__main__":
    main()
