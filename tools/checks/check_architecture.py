#!/usr/bin/env python3
"""The module graph in docs/architecture.md matches Package.swift, and no module imports one above it.

Package.swift's targets and their direct dependencies (products of other packages named by their
product) are compared with the page's list under "## The module graph" (lines of the form
"- `Target` → `Dep`, `Dep`, *External*"). Then every Swift file under Sources/<Target>/ may import
only Foundation-level system modules, its target's declared dependencies and what those depend on
(the modules below it): an import of a module that is not below it fails the check.

    python3 tools/checks/check_architecture.py [REPO]
"""
import os
import re
import sys

SYSTEM = {"Foundation", "Dispatch", "Glibc", "Darwin", "Synchronization", "Testing", "XCTest", "os"}


def package_graph(text):
    """{target: (kind, [dependencies])} of every target in Package.swift."""
    graph = {}
    starts = [m for m in re.finditer(r'\.(target|executableTarget|testTarget|systemLibrary)\(\s*name:\s*"([^"]+)"', text)]
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(text)
        span = text[m.end():end]
        deps = []
        d = span.find("dependencies:")
        if d >= 0:
            open_at = span.index("[", d)
            depth, i = 0, open_at
            while True:
                c = span[i]
                depth += c == "["
                depth -= c == "]"
                if depth == 0:
                    break
                i += 1
            body = span[open_at + 1:i]
            deps += re.findall(r'\.product\(name:\s*"([^"]+)"', body)
            body = re.sub(r'\.product\([^)]*\)', '', body)
            deps += re.findall(r'"([^"]+)"', body)
        graph[m.group(2)] = (m.group(1), deps)
    return graph


def page_graph(text):
    section = text.split("## The module graph", 1)[1].split("\n## ", 1)[0]
    graph = {}
    for line in section.splitlines():
        m = re.match(r'- `([^`]+)`(?: \([^)]*\))? → (.*)$', line.strip())
        if not m:
            continue
        name, rest = m.groups()
        deps = [] if rest.startswith("(nothing)") else re.findall(r'[`*]([A-Za-z0-9]+)[`*]', rest)
        graph[name] = deps
    return graph


def below(graph, name, seen=None):
    seen = set() if seen is None else seen
    for d in graph.get(name, ("", []))[1]:
        if d not in seen:
            seen.add(d)
            below(graph, d, seen)
    return seen


def main(repo):
    pkg = package_graph(open(os.path.join(repo, "Package.swift")).read())
    page = page_graph(open(os.path.join(repo, "docs", "architecture.md")).read())
    problems = []
    modules = {n: deps for n, (kind, deps) in pkg.items() if kind != "testTarget"}
    for name, deps in modules.items():
        if name not in page:
            problems.append(f"docs/architecture.md does not list the target {name}")
        elif sorted(page[name]) != sorted(deps):
            problems.append(f"{name}: Package.swift depends on {sorted(deps)}, the page says {sorted(page[name])}")
    for name in page:
        if name not in modules:
            problems.append(f"docs/architecture.md lists {name}, which Package.swift does not declare")
    for name in modules:
        folder = os.path.join(repo, "Sources", name)
        allowed = below(pkg, name) | SYSTEM | {name}
        for root, _, files in os.walk(folder):
            for f in files:
                if not f.endswith(".swift"):
                    continue
                for line in open(os.path.join(root, f), encoding="utf-8"):
                    m = re.match(r'\s*(?:@testable\s+|@_exported\s+)?import\s+(?:struct\s+|enum\s+|class\s+)?([A-Za-z0-9_]+)', line)
                    if m and m.group(1) not in allowed:
                        problems.append(f"Sources/{name}/{f} imports {m.group(1)}, which is not below {name}")
    for p in problems:
        print("architecture:", p)
    print(f"architecture: {len(modules)} modules, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
