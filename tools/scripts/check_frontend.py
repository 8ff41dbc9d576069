#!/usr/bin/env python3
"""Checks that Poco stays behind the client front end's interface.

    tools/scripts/check_frontend.py [HOST_DIR]

In the host, `#include <Poco/...>` may appear only in server/frontend/ (and
main.cpp), and code outside server/frontend/ may include only its interface,
server/frontend/front_end.hpp. Prints every offending line (file:line) and
exits 1 when there is one, 0 otherwise.
"""
import os
import re
import sys

FRONTEND = os.path.join("server", "frontend")
INTERFACE = "server/frontend/front_end.hpp"
POCO = re.compile(r'^\s*#\s*include\s*[<"]Poco/')
FRONTEND_INCLUDE = re.compile(r'^\s*#\s*include\s*"(server/frontend/[^"]+)"')


def offences(host):
    for root, _, names in os.walk(host):
        for name in sorted(names):
            if not name.endswith((".cpp", ".hpp", ".h")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, host)
            inside = rel.startswith(FRONTEND + os.sep)
            with open(path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    if POCO.match(line) and not inside and rel != "main.cpp":
                        yield f"{path}:{number}: Poco outside {FRONTEND}/: {line.strip()}"
                    m = FRONTEND_INCLUDE.match(line)
                    if m and not inside and m.group(1) != INTERFACE:
                        yield f"{path}:{number}: front-end internal header (use {INTERFACE}): {line.strip()}"


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "host")
    found = list(offences(host))
    for line in found:
        print(line)
    if not found:
        print(f"ok: Poco only in {FRONTEND}/, reached through {INTERFACE}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
