#!/usr/bin/env python3
"""Drives an interactive command (`tessera login`) through a pseudo-terminal, as a person at
a terminal would: answers "Password: " with --password and "Code: " with the last six-digit
word of the spool file, then prints one JSON line with everything the terminal showed and the
exit code."""

import argparse
import json
import os
import pty
import re
import select
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--password", required=True)
    parser.add_argument("--spool", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    shown = b""
    answered = set()
    deadline = time.time() + 30
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        if b"Password: " in shown and "password" not in answered:
            answered.add("password")
            os.write(fd, args.password.encode() + b"\n")
        if b"Code: " in shown and "code" not in answered:
            answered.add("code")
            with open(args.spool) as spool:
                code = re.findall(r"\b\d{6}\b", spool.read().splitlines()[-1])[-1]
            os.write(fd, code.encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    print(json.dumps({
        "output": shown.decode("utf-8", "replace"),
        "exit": os.waitstatus_to_exitcode(status),
    }))


if __name__ == "__main__":
    main()
