#!/usr/bin/env python3
"""Lists host source files over a line limit and functions over a length limit.

    tools/scripts/sizes.py [--file-limit 600] [--function-limit 80] [--top N] [DIR...]

The function finder is a brace-matching heuristic for this code base's style
(clang-format, braces on the signature's line): a '{' that ends a line whose
statement looks like a function head (a ')' before it, not a control statement,
not a lambda or initializer) starts a function; its body ends at the matching
'}'. Comments and string literals are blanked first. Good enough to find long
functions; not a parser. Exit status 0 always (a report, not a gate).
"""
import argparse
import os
import re
import sys

SOURCE_EXT = (".cpp", ".hpp", ".h", ".cc")
CONTROL = re.compile(r"^\s*(?:}\s*)?(?:if|for|while|switch|catch|else|do|try)\b")
NAME = re.compile(r"([A-Za-z_~][\w:~<>,\s]*?(?:operator\s*\S+?|[\w~]+))\s*\(")


def strip(text):
    """Blanks comments and string/char literals, keeping newlines."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * max(0, min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, length in lines) of each function body in `path`."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = strip(f.read()).split("\n")
    found, i = [], 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.endswith("{") and not CONTROL.match(line):
            # The statement head: this line and the ones before it back to a ';', '{' or '}'.
            head, j = line[:-1], i
            while ")" in line and j > 0 and not re.search(r"[;{}]\s*$", lines[j - 1]) and "(" not in head.split(")")[0]:
                j -= 1
                head = lines[j].rstrip() + " " + head
            head_s = head.strip()
            is_function = (
                re.search(r"\)\s*(?:const|override|final|noexcept|->\s*[\w:<>&*\s]+|\s)*$", head_s)
                and not re.search(r"(?:=|return|\[[^\]]*\]\s*(?:\([^)]*\))?|,)\s*[^=]*\)\s*(?:mutable\s*)?$", head_s.split("(")[0] + "(")
                and "[" not in head_s.split("(")[0]
                and not CONTROL.match(head_s)
            )
            if is_function:
                depth, k = 0, i
                for k in range(i, len(lines)):
                    depth += lines[k].count("{") - lines[k].count("}")
                    if depth <= 0:
                        break
                m = NAME.search(head_s)
                name = m.group(1).split()[-1] if m else head_s[:40]
                found.append((name, i + 1, k - i + 1))
                i = k + 1
                continue
        i += 1
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="*", default=["host"])
    ap.add_argument("--file-limit", type=int, default=600)
    ap.add_argument("--function-limit", type=int, default=80)
    args = ap.parse_args()
    files = []
    for d in args.dirs:
        for root, _, names in os.walk(d):
            files += [os.path.join(root, n) for n in names if n.endswith(SOURCE_EXT)]
    files.sort()
    print(f"files over {args.file_limit} lines:")
    for p in files:
        with open(p, encoding="utf-8", errors="replace") as f:
            n = sum(1 for _ in f)
        if n > args.file_limit:
            print(f"  {n:5d}  {p}")
    print(f"functions over {args.function_limit} lines:")
    long = [(n, p, name, line) for p in files for name, line, n in functions(p) if n > args.function_limit]
    for n, p, name, line in sorted(long, reverse=True):
        print(f"  {n:5d}  {p}:{line}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
