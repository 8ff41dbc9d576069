#!/usr/bin/env python3
"""Checks the host's includes against its layer table (host/layers.txt).

  check_layers.py [--root DIR] [--doc ARCHITECTURE.md]   exit 1 on any violation
  check_layers.py --markdown                               print the table for ARCHITECTURE.md
  check_layers.py --self-test                              prove the check catches what it should

A violation is a file in host/<layer>/ that includes "<other>/..." when <other>
is not one of the layers <layer> may use, an outside header family (<tailgate/>,
<Poco/>) the layer is not marked for, code naming a plugin ABI type or constant
(tg_*, TG_*) in a layer not marked +sdk (it may reach the ABI header through
another layer's), or a directory of host/ missing from the table. With --doc, the table between the layer markers of that file must be
what --markdown prints, so the documentation cannot drift from the build.
"""

import argparse
import pathlib
import re
import sys
import tempfile

# Outside header families a layer must be marked for ('+name' in layers.txt).
EXTERNAL = {"sdk": "tailgate/", "poco": "Poco/"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
ABI_NAME = re.compile(r"\b(?:tg|TG)_[A-Za-z0-9_]+")
COMMENT_OR_STRING = re.compile(r'//.*|/\*.*?\*/|"(?:\\.|[^"\\])*"')
DOC_BEGIN = "<!-- layers:begin (tools/scripts/check_layers.py --markdown) -->"
DOC_END = "<!-- layers:end -->"
SOURCE_SUFFIXES = {".cpp", ".hpp", ".h", ".cc", ".ipp"}


class Layer:
    def __init__(self, name, deps, externals, line):
        self.name, self.deps, self.externals, self.line = name, deps, externals, line


def parse_table(path):
    """Returns the layers in file order; raises ValueError on a malformed table."""
    layers = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        name, sep, rest = text.partition(":")
        name = name.strip()
        if not sep or not re.fullmatch(r"[a-z_]+", name):
            raise ValueError(f"{path}:{number}: expected '<layer>: <layers> [+external...]'")
        if name in layers:
            raise ValueError(f"{path}:{number}: layer '{name}' listed twice")
        deps, externals = [], []
        for token in rest.split():
            if token.startswith("+"):
                if token[1:] not in EXTERNAL:
                    raise ValueError(f"{path}:{number}: unknown outside family '{token}'")
                externals.append(token[1:])
            elif token not in layers:
                raise ValueError(f"{path}:{number}: '{name}' uses '{token}', which is not listed above it")
            else:
                deps.append(token)
        layers[name] = Layer(name, deps, externals, number)
    return layers


def violations(root, layers):
    host = root / "host"
    found = []
    for d in sorted(p for p in host.iterdir() if p.is_dir()):
        if d.name not in layers:
            found.append(f"host/{d.name}/: not a layer of host/layers.txt (add it with what it may use)")
    for name, layer in layers.items():
        allowed = set(layer.deps) | {name}
        for f in sorted((host / name).rglob("*")):
            if f.suffix not in SOURCE_SUFFIXES or not f.is_file():
                continue
            rel = f.relative_to(root)
            in_block_comment = False
            for number, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                code, in_block_comment = strip_comments(line, in_block_comment)
                if "sdk" not in layer.externals:
                    abi = ABI_NAME.search(code)
                    if abi:
                        found.append(f"{rel}:{number}: names {abi.group(0)} of the plugin ABI, but {name} is "
                                     f"not marked +sdk (use common/vocabulary.hpp)")
                m = INCLUDE.match(line)
                if not m:
                    continue
                quote, target = m.groups()
                if quote == '"':
                    top = target.split("/", 1)[0] if "/" in target else None
                    if top and (host / top).is_dir() and top not in allowed:
                        may = ", ".join(layer.deps) or "no other layer"
                        found.append(f'{rel}:{number}: includes "{target}", but {name} may use only: {may}')
                else:
                    for family, prefix in EXTERNAL.items():
                        if target.startswith(prefix) and family not in layer.externals:
                            found.append(f"{rel}:{number}: includes <{target}>, but {name} is not marked +{family}")
    return found


def strip_comments(line, in_block_comment):
    """The line's code without comments and string literals; whether a /* */ comment is still open."""
    if in_block_comment:
        end = line.find("*/")
        if end < 0:
            return "", True
        line = line[end + 2:]
    code = COMMENT_OR_STRING.sub(" ", line)
    start = code.find("/*")
    if start >= 0:
        return code[:start], True
    return code, False


def markdown(layers):
    rows = ["| layer | may include | outside headers |", "|---|---|---|"]
    for layer in layers.values():
        deps = ", ".join(f"`{d}`" for d in layer.deps) or "—"
        ext = ", ".join(f"`<{EXTERNAL[e]}>`" for e in layer.externals) or ""
        rows.append(f"| `{layer.name}` | {deps} | {ext} |")
    return "\n".join(rows)


def doc_problem(doc, layers):
    text = doc.read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        return f"{doc}: no layer table (markers {DOC_BEGIN} ... {DOC_END})"
    shown = text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0].strip()
    if shown != markdown(layers):
        return f"{doc}: the layer table differs from host/layers.txt; replace it with the output of --markdown"
    return None


def check(root, doc=None):
    try:
        layers = parse_table(root / "host" / "layers.txt")
    except (OSError, ValueError) as e:
        return [str(e)]
    found = violations(root, layers)
    if doc is not None:
        problem = doc_problem(doc, layers)
        if problem:
            found.append(problem)
    return found


def self_test():
    """A clean tree passes; each kind of violation is reported with its file and line."""
    def tree(base, table, files):
        (base / "host").mkdir(parents=True)
        (base / "host" / "layers.txt").write_text(table)
        for rel, text in files.items():
            p = base / "host" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        return base

    table = "low:\nmid: low\ntop: low mid +poco\n"
    clean = {"low/a.hpp": "#include <vector>\n", "mid/b.cpp": '#include "low/a.hpp"\n#include "b.hpp"\n',
             "top/c.cpp": '#include "mid/b.hpp"\n#include <Poco/Net/Socket.h>\n'}
    cases = [
        ({"low/x/deep.cpp": '#include "mid/b.hpp"\n'}, 'host/low/x/deep.cpp:1: includes "mid/b.hpp"'),
        ({"mid/p.cpp": "\n#include <Poco/Net/Socket.h>\n"}, "host/mid/p.cpp:2: includes <Poco/Net/Socket.h>"),
        ({"mid/s.hpp": "#  include <tailgate/plugin_abi.h>\n"}, "host/mid/s.hpp:1: includes <tailgate/plugin_abi.h>"),
        ({"extra/e.cpp": "\n"}, "host/extra/: not a layer"),
        ({"mid/t.cpp": "int x = 1;\nauto e = TG_EVENT_STARTED;  // tg_event\n"}, "host/mid/t.cpp:2: names TG_EVENT_STARTED"),
        ({"mid/u.cpp": '// tg_args, "TG_X"\n/* tg_a\n tg_b */ const char* s = "tg_c";\nint tg_d;\n'},
         "host/mid/u.cpp:4: names tg_d"),
    ]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp)
        if check(tree(base / "clean", table, clean)):
            failures.append(f"clean tree reported: {check(base / 'clean')}")
        for k, (extra, expected) in enumerate(cases):
            found = check(tree(base / f"case{k}", table, {**clean, **extra}))
            if len(found) != 1 or not found[0].startswith(expected):
                failures.append(f"case {k}: expected one violation starting {expected!r}, got {found}")
        if not check(tree(base / "upward", "low: mid\nmid:\n", {})):
            failures.append("a layer using one listed below it was accepted")
        doc = base / "clean" / "ARCH.md"
        doc.write_text(f"x\n{DOC_BEGIN}\n| stale |\n{DOC_END}\n")
        if not check(base / "clean", doc):
            failures.append("a stale table in the doc was accepted")
        doc.write_text(f"x\n{DOC_BEGIN}\n{markdown(parse_table(base / 'clean/host/layers.txt'))}\n{DOC_END}\n")
        if check(base / "clean", doc):
            failures.append("the doc's current table was refused")
    for f in failures:
        print("self-test:", f, file=sys.stderr)
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[2])
    ap.add_argument("--doc", type=pathlib.Path, help="a Markdown file whose layer table must match")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.markdown:
        print(markdown(parse_table(args.root / "host" / "layers.txt")))
        return 0
    found = check(args.root, args.doc)
    for v in found:
        print(v, file=sys.stderr)
    if found:
        print(f"{len(found)} layering violation(s); the table is host/layers.txt", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
