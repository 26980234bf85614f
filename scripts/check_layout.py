"""Checks the house rules of the source tree (run by scripts/test.sh):

1. no import cycle among the files of src/: following ``crate::`` / ``super::`` paths
   from file to file never leads back to where it started;
2. each engine file imports only from its own floor or the floors below
   (ARCHITECTURE.md: data before network before propagate before batch ...);
3. no function in src/ or python/mlp_rs/ is longer than MAX_LINES lines (unit tests
   aside: ``#[cfg(test)]`` modules in Rust).

Exits non-zero and lists what breaks a rule.
"""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_LINES = 90

# The engine's floors, lowest first (ARCHITECTURE.md); a file may import from its own
# floor and the ones below it. lib.rs (the crate root) re-exports and sits above all.
FLOORS = [
    {
        "real",
        "simd",
        "register",
        "exp",
        "error",
        "memory",
        "mt19937",
        "reduce",
        "affinity",
    },
    {"data", "gemm", "narrow", "sparse", "zeros", "bf16", "parallel", "team"},
    {"network", "activation", "loss", "dropout"},
    {"workspace", "propagate"},
    {"batch", "optimizer"},
    {"trainer", "objective", "predict", "score"},
    {"python"},
    {"lib"},
]


def module_of(path):
    """`src/python/fit.rs` -> ('python', 'fit'); `src/data.rs` -> ('data',)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def floor_of(module):
    top = module[0]
    for i, names in enumerate(FLOORS):
        if top in names:
            return i
    return None


def strip_rust(text):
    """The code without comments, strings and char literals, and without
    ``#[cfg(test)]`` items (lines kept, so that line numbers stay right)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == '"' or text.startswith('r"', i) or text.startswith('r#"', i):
            if c == "r":
                hashes = text[i + 1 : text.find('"', i)]
                end = '"' + hashes
                j = text.find(end, text.find('"', i) + 1) + len(end)
            else:
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                j += 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            j = text.index("'", i + 2 if text[i + 1] == "\\" else i + 1)
            # a char literal such as '{' or '\n' (lifetimes have no closing quote)
            if text[i + 1] == "\\":
                j = text.index("'", i + 2)
            out.append("' '")
            i = j + 1
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    return drop_test_items(code)


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def drop_test_items(code):
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]", code))):
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            end = semi
        else:
            end = matching_brace(code, brace)
        blank = "\n" * code.count("\n", m.start(), end + 1)
        code = code[: m.start()] + blank + code[end + 1 :]
    return code


def rust_imports(path, code):
    module = module_of(path)
    found = set()
    for m in re.finditer(r"\bcrate::(\w+)(?:::(\w+))?", code):
        found.add((m.group(1),) + ((m.group(2),) if m.group(2) else ()))
    for m in re.finditer(r"\bsuper::(\w+)", code):
        found.add(module[:-1] + (m.group(1),))
    # `use crate::{a, b::c}` groups
    for m in re.finditer(r"\buse\s+crate::\{([^;]*)\};", code, re.S):
        for name in re.findall(r"(?:^|[,{]\s*)(\w+)", m.group(1)):
            found.add((name,))
    files = {}
    for target in found:
        for cut in (target, target[:1]):
            f = resolve(cut)
            if f is not None:
                if f != path:
                    files[f] = cut
                break
    return files


def resolve(module):
    base = SRC.joinpath(*module)
    for f in (base.with_suffix(".rs"), base / "mod.rs"):
        if f.exists():
            return f
    return None


def find_cycles(graph):
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def rust_functions(code):
    """(name, first line, line count) of every fn with a body."""
    pattern = r"\bfn\s+(\w+)\s*(?:<[^{;]*?>)?\s*\("
    for m in re.finditer(pattern, code):
        brace, semi = code.find("{", m.end()), code.find(";", m.end())
        if brace < 0 or (
            0 <= semi < brace and not signature_spans(code, m.end(), semi)
        ):
            continue
        end = matching_brace(code, brace)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        yield m.group(1), first, last - first + 1


def signature_spans(code, start, semi):
    """Whether the `;` found lies inside the signature's parentheses (an array type)."""
    depth = 1
    for j in range(start, semi):
        depth += {"(": 1, ")": -1}.get(code[j], 0)
        if depth == 0:
            return False
    return True


def python_functions(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            yield node.name, start, node.end_lineno - start + 1


def main():
    problems = []
    graph = {}
    for path in sorted(SRC.rglob("*.rs")):
        code = strip_rust(path.read_text())
        imports = rust_imports(path, code)
        graph[path] = set(imports)
        here = floor_of(module_of(path))
        for f, target in imports.items():
            there = floor_of(module_of(f))
            same_package = module_of(f)[0] == module_of(path)[0]
            if here is not None and there is not None and there > here:
                if not same_package:
                    problems.append(
                        f"{path.relative_to(ROOT)} (floor {here}) imports "
                        f"{'::'.join(target)} (floor {there}): an upward import"
                    )
        for name, line, count in rust_functions(code):
            if count > MAX_LINES:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line} fn {name} is {count} lines"
                )
    for cycle in find_cycles(graph):
        names = " -> ".join(str(p.relative_to(SRC)) for p in cycle)
        problems.append(f"import cycle: {names}")
    for path in sorted((ROOT / "python" / "mlp_rs").rglob("*.py")):
        for name, line, count in python_functions(path):
            if count > MAX_LINES:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line} def {name} is {count} lines"
                )
    for p in problems:
        print(p)
    n_files = len(graph)
    print(
        f"check_layout: {n_files} Rust files, {len(problems)} problem(s)"
        f" (cycles, upward imports, functions over {MAX_LINES} lines)"
    )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
