#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The layering check of `make check-layers` (docs/TESTING.md).

    layers.py [--build DIR] [--src DIR] [--max-lines N] [--graph]
    layers.py --self-test [--cc CC]

Two checks; exit 0 when both pass, 1 when either finds something, 2 when
it cannot run (an object missing, nm failing).

1. No cycle between the modules of core/.  A module is one source file,
   core/X.c, compiled to DIR/obj/core/X.o.  `nm -g -P` lists each object's
   global symbols: defined ones (T D B R C W V i u ...) and undefined ones
   (U, and w/v, weak and undefined).  Module A depends on module B when A
   has an undefined symbol that B defines; symbols no core module defines
   (libc, sqlite, ...) make no edge.  Every elementary cycle of that graph
   is printed, starting at its alphabetically first module, with one
   example symbol per edge (the first in alphabetical order) and how many
   more symbols make that edge:

       layers: cycle: core/a.c -> core/b.c -> core/a.c
           core/a.c -> core/b.c  (b_open and 2 more)
           core/b.c -> core/a.c  (a_note)

   Each group of modules that depend on one another (a strongly connected
   component) is named first, on a line "layers: modules in a cycle: ...".

2. No function longer than --max-lines (100) lines, in core/*.c,
   lendfs/*.c, lendfs/tools/*.c and contrib/slurm/*.c (tests are exempt).  A function's
   length is counted from the first line of its definition (the line with
   its return type or storage class, or a leading attribute such as
   `_printf_(1, 2)`; the comment above it does not count) to the line of
   its closing brace, both included: a one-line body between a signature
   line and a brace line is 3 lines.  Blank and comment lines inside count.
   Each violation is printed as

       core/vm.c:912: function hotplug_add is 153 lines (max 100)

   where 912 is the first line of the definition.

   The C is read well enough for this code base, not parsed: comments,
   string and character literals and preprocessor directives (with their
   continuation lines) are blanked first, line numbers kept; then a `{` at
   brace depth 0 opens a function body when the text before it, back to
   the previous top-level `;` or `}`, ends with `)` and has no `=` outside
   parentheses (so struct, union and enum bodies, initializers and compound
   literals are not functions).  The name is the identifier before the last
   parenthesised group of that text that is not an attribute (`__attribute__`,
   `__asm__`, or a systemd-style `_name_` macro such as `_printf_`).

The last line is a summary, also when all is well:

    layers: 27 modules, 0 cycles; 801 functions, 0 longer than 100 lines

--graph prints every edge of the module graph first (A -> B: N symbols).
--self-test compiles synthetic modules with --cc into a temporary
directory and checks that a two-module and a three-module cycle, and a
101-line function (but not a 100-line one, nor braces in comments, strings,
initializers or macros) are reported, with exit status 1, and that a clean
tree passes: proof that the check can fail.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_LINES = 100
CYCLES_SHOWN = 200
FUNCTION_DIRS = ("core", "lendfs", "lendfs/tools", "contrib/slurm")
UNDEFINED_TYPES = set("Uwv")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\S")
ATTRIBUTE_WORDS = {"__attribute__", "__attribute", "__declspec", "__asm__",
                   "__asm", "asm", "_Alignas", "alignas", "_Pragma"}
ATTRIBUTE_MACRO_RE = re.compile(r"_[A-Za-z0-9_]*_\Z")


class Unusable(Exception):
    """The check cannot run (exit 2)."""


# ---- 1. cycles between core modules -----------------------------------------

def nm_symbols(nm, obj):
    """(defined, undefined) global symbol sets of one object file."""
    try:
        out = subprocess.run([nm, "-g", "-P", obj], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise Unusable("cannot run %s on %s: %s" % (nm, obj, e))
    defined, undefined = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2 or line.endswith(":"):
            continue
        (undefined if f[1] in UNDEFINED_TYPES else defined).add(f[0])
    return defined, undefined


def core_modules(src, build):
    """{"core/X.c": "BUILD/obj/core/X.o"} for every core/*.c of src."""
    core = os.path.join(src, "core")
    mods = {}
    for name in sorted(os.listdir(core)):
        if not name.endswith(".c"):
            continue
        obj = os.path.join(build, "obj", "core", name[:-2] + ".o")
        if not os.path.isfile(obj):
            raise Unusable("%s missing: build first (make all)" % obj)
        mods["core/" + name] = obj
    return mods


def module_graph(nm, mods):
    """{A: {B: [symbols A uses that B defines]}}, lists sorted."""
    syms = {m: nm_symbols(nm, o) for m, o in mods.items()}
    definer = {}
    for m, (defined, _) in syms.items():
        for s in defined:
            definer.setdefault(s, []).append(m)
    graph = {m: {} for m in mods}
    for m, (_, undefined) in syms.items():
        for s in undefined:
            for d in definer.get(s, ()):
                if d != m:
                    graph[m].setdefault(d, []).append(s)
    for edges in graph.values():
        for d in edges:
            edges[d].sort()
    return graph


def strongly_connected(graph):
    """Tarjan's strongly connected components, iteratively; sorted lists."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    scc.append(n)
                    if n == node:
                        break
                sccs.append(sorted(scc))
    return sccs


def elementary_cycles(graph, scc, limit):
    """Elementary cycles inside one component, each starting at its smallest
    module, at most limit of them; returns (cycles, complete)."""
    members = set(scc)
    cycles = []
    for start in scc:
        allowed = {m for m in members if m >= start}
        path = [start]

        def walk(node):
            for nxt in sorted(graph[node]):
                if nxt not in allowed:
                    continue
                if nxt == start:
                    cycles.append(path + [start])
                    if len(cycles) >= limit:
                        return False
                elif nxt not in path:
                    path.append(nxt)
                    ok = walk(nxt)
                    path.pop()
                    if not ok:
                        return False
            return True

        if not walk(start):
            return cycles, False
    return cycles, True


def check_cycles(graph, out):
    """Print the cycles; return how many were found (a lower bound when
    there are more than CYCLES_SHOWN)."""
    found, complete = [], True
    for scc in strongly_connected(graph):
        if len(scc) < 2:
            continue
        out.write("layers: modules in a cycle: %s\n" % " ".join(scc))
        cycles, done = elementary_cycles(graph, scc, CYCLES_SHOWN - len(found))
        found += cycles
        complete = complete and done
        for c in cycles:
            out.write("layers: cycle: %s\n" % " -> ".join(c))
            for a, b in zip(c, c[1:]):
                syms = graph[a][b]
                more = " and %d more" % (len(syms) - 1) if len(syms) > 1 else ""
                out.write("    %s -> %s  (%s%s)\n" % (a, b, syms[0], more))
        if not complete:
            out.write("layers: more cycles not shown (first %d only)\n"
                      % CYCLES_SHOWN)
            break
    return len(found)


# ---- 2. function length -----------------------------------------------------

def strip_c(text):
    """Blank comments, string and char literals and preprocessor directives
    (continuation lines included), keeping every newline in place."""
    out = []
    state = "code"          # code, line, block, str, chr
    directive = False
    line_start = True
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "\\" and nxt == "\n":       # continuation: keeps everything
            out.append(" \n")
            i += 2
            continue
        if c == "\n":
            if state == "line":
                state = "code"
            if state == "code":
                directive = False
            line_start = True
            out.append("\n")
            i += 1
            continue
        blank = state != "code" or directive
        if state == "code":
            if c == "/" and nxt == "*":
                state, blank = "block", True
                out.append("  ")
                i += 2
                continue
            if c == "/" and nxt == "/":
                state, blank = "line", True
            elif c == '"':
                state, blank = "str", True
            elif c == "'":
                state, blank = "chr", True
            elif c == "#" and line_start:
                directive = blank = True
        elif state == "block" and c == "*" and nxt == "/":
            state = "code"
            out.append("  ")
            i += 2
            continue
        elif state in ("str", "chr"):
            if c == "\\" and nxt:
                out.append("  " if nxt != "\n" else " \n")
                i += 2
                continue
            if (state == "str" and c == '"') or (state == "chr" and c == "'"):
                state = "code"
        if not c.isspace() and state != "block":
            line_start = False
        out.append(" " if blank and not c.isspace() else c)
        i += 1
    return "".join(out)


def is_attribute(word):
    return word in ATTRIBUTE_WORDS or bool(ATTRIBUTE_MACRO_RE.match(word))


def paren_groups(tokens):
    """[(identifier before '(' or None, index of that token, index of ')')]
    for the parenthesised groups at parenthesis depth 0."""
    groups, depth, opened = [], 0, None
    for k, (tok, _) in enumerate(tokens):
        if tok == "(":
            if depth == 0:
                opened = k
            depth += 1
        elif tok == ")" and depth:
            depth -= 1
            if depth == 0:
                prev = tokens[opened - 1][0] if opened else ""
                ident = prev if IDENT_RE.fullmatch(prev) else None
                groups.append((ident, opened - 1 if ident else opened, k))
    return groups


def function_header(head, offset):
    """(name, offset of the definition's first character) when head, the
    text between the previous top-level ';' or '}' and a top-level '{',
    is a function's signature; None otherwise."""
    tokens = [(m.group(0), m.start()) for m in TOKEN_RE.finditer(head)]
    if not tokens or tokens[-1][0] != ")":
        return None
    depth = 0
    for tok, _ in tokens:
        depth += tok == "("
        depth -= tok == ")"
        if tok == "=" and depth == 0:
            return None
    named = [g for g in paren_groups(tokens) if g[0] and not is_attribute(g[0])]
    if not named:
        return "?", offset + tokens[0][1]
    name, first, _ = named[-1]
    start = 0
    for _, _, close in named[:-1]:  # a macro call without ';' before it
        start = close + 1
    start = min(start, first)
    return name, offset + tokens[start][1]


def functions(text):
    """[(name, first line, last line)] of the function definitions."""
    s = strip_c(text)
    line_at = []
    line = 1
    for c in s:
        line_at.append(line)
        line += c == "\n"
    found, depth, head, current = [], 0, 0, None
    for i, c in enumerate(s):
        if c == "{":
            if depth == 0:
                current = function_header(s[head:i], head)
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                if current:
                    name, start = current
                    found.append((name, line_at[start], line_at[i]))
                current, head = None, i + 1
        elif c == ";" and depth == 0:
            head = i + 1
    return found


def source_files(src):
    files = []
    for d in FUNCTION_DIRS:
        path = os.path.join(src, d)
        if os.path.isdir(path):
            files += sorted(os.path.join(d, f) for f in os.listdir(path)
                            if f.endswith(".c"))
    return files


def check_lengths(src, max_lines, out):
    """Print the functions longer than max_lines; return (count, long)."""
    total = too_long = 0
    for rel in source_files(src):
        with open(os.path.join(src, rel), encoding="utf-8",
                  errors="replace") as f:
            text = f.read()
        for name, first, last in functions(text):
            total += 1
            length = last - first + 1
            if length > max_lines:
                too_long += 1
                out.write("%s:%d: function %s is %d lines (max %d)\n"
                          % (rel, first, name, length, max_lines))
    return total, too_long


def run(src, build, nm, max_lines, graph_too, out):
    mods = core_modules(src, build)
    graph = module_graph(nm, mods)
    if graph_too:
        for a in sorted(graph):
            for b in sorted(graph[a]):
                out.write("layers: edge %s -> %s: %d symbols (%s)\n"
                          % (a, b, len(graph[a][b]), graph[a][b][0]))
    ncycles = check_cycles(graph, out)
    nfuncs, nlong = check_lengths(src, max_lines, out)
    out.write("layers: %d modules, %d cycles; %d functions, %d longer than "
              "%d lines\n" % (len(mods), ncycles, nfuncs, nlong, max_lines))
    return 1 if ncycles or nlong else 0


# ---- --self-test --------------------------------------------------------------

def body(n):
    """A function definition of exactly n lines (n >= 6)."""
    return ("static int\nlong_%d(void)\n{\n\tint x = 0;\n\n" % n
            + "\tx++;\n" * (n - 7)
            + "\treturn x;\n}\n")


SELF_TEST_FILES = {
    # a -> b -> a, and c -> d -> e -> c; f is clean
    "core/a.c": "int b_fn(void);\nint a_fn(void) { return b_fn(); }\n"
                "int a_data = 1;\n",
    "core/b.c": "extern int a_data;\nint b_fn(void) { return a_data; }\n",
    "core/c.c": "int d_fn(void);\nint c_fn(void) { return d_fn(); }\n",
    "core/d.c": "int e_fn(void);\nint d_fn(void) { return e_fn(); }\n",
    "core/e.c": "int c_fn(void);\nint e_fn(void) { return c_fn(); }\n",
    "core/f.c": "int a_fn(void);\nint f_fn(void) { return a_fn(); }\n",
    # 101 lines: reported at its line 14; braces that are not functions,
    # in comments, strings, chars, macros and initializers, around it
    "lendfs/long.c": (
        "/* { not a function ( ) { */\n"                  # 1
        "#define BRACES(x) do { (x); } \\\n"               # 2
        "\twhile (0) {\n"                                  # 3
        "struct s { int a; };\n"                           # 4
        "static const struct s one = { 1 };\n"             # 5
        "static const char *str = \"){\";\n"               # 6
        "static const char ch = '{';\n"                    # 7
        "static int *p = (int[]){ 1, 2 };\n"               # 8
        "enum e { E1, E2 };\n"                             # 9
        "int printf(const char *, ...);\n"                 # 10
        "__attribute__((format(printf, 1, 2)))\n"          # 11
        "int say(const char *f, ...) { return 0; }\n"      # 12
        "// }\n"                                           # 13
        + body(101) + body(100)),                          # 14, 115
    "lendfs/tools/ok.c": "int main(void)\n{\n\treturn 0;\n}\n",
}
SELF_TEST_EXPECT = [
    "layers: cycle: core/a.c -> core/b.c -> core/a.c",
    "    core/a.c -> core/b.c  (b_fn)",
    "    core/b.c -> core/a.c  (a_data)",
    "layers: cycle: core/c.c -> core/d.c -> core/e.c -> core/c.c",
    "lendfs/long.c:14: function long_101 is 101 lines (max 100)",
    "layers: 6 modules, 2 cycles; 10 functions, 1 longer than 100 lines",
]


def self_test_tree(root, cc, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        if rel.startswith("core/"):
            obj = os.path.join(root, "build", "obj", rel[:-2] + ".o")
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            subprocess.run([cc, "-c", "-o", obj, path], check=True,
                           stdout=subprocess.DEVNULL)


def self_test_run(root):
    p = subprocess.run([sys.executable, os.path.abspath(__file__),
                        "--src", root, "--build", os.path.join(root, "build")],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def self_test(cc):
    """Synthetic trees: a faulty one must fail as expected, a clean one pass."""
    problems = []
    root = tempfile.mkdtemp(prefix="layers-")
    try:
        self_test_tree(os.path.join(root, "bad"), cc, SELF_TEST_FILES)
        rc, text = self_test_run(os.path.join(root, "bad"))
        if rc != 1:
            problems.append("faulty tree: exit %d, not 1" % rc)
        lines = text.splitlines()
        problems += ["faulty tree: missing %r" % e
                     for e in SELF_TEST_EXPECT if e not in lines]
        if sum(ln.startswith("layers: cycle:") for ln in lines) != 2:
            problems.append("faulty tree: not exactly 2 cycles")
        if sum(": function " in ln for ln in lines) != 1:
            problems.append("faulty tree: not exactly 1 long function")
        clean = {k: v for k, v in SELF_TEST_FILES.items()
                 if k in ("core/a.c", "core/f.c", "lendfs/tools/ok.c")}
        clean["core/a.c"] = "int a_fn(void) { return 0; }\n" + body(100)
        self_test_tree(os.path.join(root, "good"), cc, clean)
        rc, good = self_test_run(os.path.join(root, "good"))
        if rc != 0:
            problems.append("clean tree: exit %d, not 0" % rc)
    finally:
        shutil.rmtree(root)
    if problems:
        sys.stdout.write(text)
        for p in problems:
            print("layers: self-test: %s" % p)
        return 1
    print("layers: self-test: a cycle and a 101-line function fail the check, "
          "a clean tree passes")
    return 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="module cycles and function "
                                 "length (docs/TESTING.md)")
    ap.add_argument("--build", default="build",
                    help="build directory with obj/core/*.o (build)")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(here)),
                    help="source tree (the one holding this script)")
    ap.add_argument("--max-lines", type=int, default=MAX_LINES)
    ap.add_argument("--nm", default=os.environ.get("NM", "nm"))
    ap.add_argument("--graph", action="store_true",
                    help="print the module graph's edges too")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"),
                    help="compiler for --self-test")
    args = ap.parse_args()
    try:
        if args.self_test:
            return self_test(args.cc)
        return run(args.src, args.build, args.nm, args.max_lines, args.graph,
                   sys.stdout)
    except (Unusable, OSError, subprocess.CalledProcessError) as e:
        print("layers: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
