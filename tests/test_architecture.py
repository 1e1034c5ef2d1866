"""The package's architecture, checked statically (AST only: nothing under xbotlib/ is imported).

One picture a newcomer can rely on (issue #15, DESIGN.md "Layout"):

- ``core/`` is pure: it imports nothing of store, clients, jobs, app, sim, views or devtools, nor
  psycopg or httpx — not even inside a function;
- every SQL statement lives in ``store/``: outside it no ``.execute(``, ``.executemany(``, ``.copy(``,
  ``.cursor(`` and no string that reads as SQL (``ALLOWED_SQL`` lists the exceptions, each with its
  reason; it is meant to stay empty);
- the layers import downwards only (``LAYERS``), and no xbotlib modules import each other in a cycle;
- no module is over ``MAX_LINES`` lines unless its docstring says why in a line ``Size: …``;
- an import inside a function (of xbotlib or of a third-party package) says why on its line or the
  line before (start-up time, a cycle, an optional dependency — see ``REASON_WORDS``);
- only ``xbot bench`` (``xbotlib/app/cli/``) imports ``xbotlib.devtools``.

Every failure lists each offending ``file:line``. The checkers are plain functions over source text,
and each is shown to fail on a small source with a violation (the ``test_checker_*`` tests).
"""
from __future__ import annotations

import ast
import functools
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xbotlib"
MAX_LINES = 400

FOUNDATIONS = ("xbotlib.config", "xbotlib.clock", "xbotlib.logs")
# layer -> what its modules may import of xbotlib (module-level and function-level imports alike)
LAYERS: dict[str, tuple[str, ...]] = {
    "xbotlib.config": FOUNDATIONS,
    "xbotlib.clock": FOUNDATIONS,
    "xbotlib.logs": FOUNDATIONS,
    "xbotlib.core": ("xbotlib.core", *FOUNDATIONS),
    "xbotlib.store": ("xbotlib.store", "xbotlib.core", *FOUNDATIONS),
    "xbotlib.clients": ("xbotlib.clients", "xbotlib.core", *FOUNDATIONS),
    "xbotlib.sim": ("xbotlib.sim", "xbotlib.core", *FOUNDATIONS),
    "xbotlib.jobs": ("xbotlib.jobs", "xbotlib.store", "xbotlib.clients", "xbotlib.core", *FOUNDATIONS),
    "xbotlib.views": ("xbotlib.views", "xbotlib.store", "xbotlib.core", *FOUNDATIONS),
}
# the two jobs modules that build a simulated world
SIM_IN_JOBS = ("xbotlib.jobs.context", "xbotlib.jobs.campaign")
CORE_FORBIDDEN = ("xbotlib.store", "xbotlib.clients", "xbotlib.jobs", "xbotlib.app", "xbotlib.sim", "xbotlib.views",
                  "xbotlib.devtools", "psycopg", "psycopg_pool", "httpx")
DEVTOOLS_MAY_BE_IMPORTED_BY = ("xbotlib.devtools", "xbotlib.app.cli")  # `xbot bench`

# "path::function" (or "path::<module>") -> why SQL is executed or written there instead of in store/
ALLOWED_SQL: dict[str, str] = {}

SQL_CALLS = ("execute", "executemany", "copy", "cursor")
NOT_SQL_COPY_RECEIVERS = ("np", "numpy", "copy", "shutil")  # np.copy(a), copy.copy(x), shutil.copy(a, b)
_KEYWORDS = "SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|COPY|LOCK|TRUNCATE"
# an upper-case keyword followed by an identifier, quote, paren, star or number: SQL as this code writes it
_SQL_UPPER = re.compile(rf"^\s*(?:{_KEYWORDS})\s+[\w\"(*]")
# lower-case SQL must also look like a statement, so prose ("update the arms") is not flagged
_SQL_ANY_CASE = re.compile(
    r"""^\s*(?:select\s.*\bfrom\s+[\w"(]|insert\s+into\s+\w|update\s+\w+\s+set\s|delete\s+from\s+\w
           |with\s+\w+\s+as\s*\(|create\s+(?:table|index|unique|extension|database|schema|temp|or\s+replace)\b
           |alter\s+table\s|drop\s+(?:table|index|database|schema)\b|copy\s+[\w(].*\b(?:from|to)\s+std(?:in|out)\b
           |lock\s+table\s|truncate\s+(?:table\s+)?\w)""", re.IGNORECASE | re.DOTALL | re.VERBOSE)

REASON_WORDS = ("start-up", "startup", "cycle", "optional", "imported here:")


# ----------------------------------------------------------------------------- reading the package

def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


@functools.lru_cache(maxsize=None)
def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def rel(path: Path | str) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_absolute() else str(path)


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(tree: ast.Module, module: str, is_package: bool = False):
    """(lineno, end_lineno, imported name, function-level?, under TYPE_CHECKING?) for every import.

    ``from a import b`` yields ``a.b`` when that is one of our modules and ``a`` otherwise; relative
    imports are resolved against ``module``. ``importlib.import_module("x")`` and ``__import__("x")``
    with a literal name count as imports too.
    """
    modules = package_modules()
    out = []

    def visit(node, in_function: bool, type_checking: bool):
        for child in ast.iter_child_nodes(node):
            fn = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            tc = type_checking or (isinstance(child, ast.If) and _is_type_checking(child))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.append((child.lineno, child.end_lineno, alias.name, in_function, type_checking))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = module.split(".")
                    anchor = parts if is_package else parts[:-1]
                    anchor = anchor[:len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    name = full if full in modules else base
                    out.append((child.lineno, child.end_lineno, name, in_function, type_checking))
            elif isinstance(child, ast.Call) and child.args and isinstance(child.args[0], ast.Constant) \
                    and isinstance(child.args[0].value, str):
                f = child.func
                if (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
                        isinstance(f, ast.Name) and f.id in ("import_module", "__import__")):
                    out.append((child.lineno, child.end_lineno, child.args[0].value, in_function, type_checking))
            visit(child, fn, tc)

    visit(tree, False, False)
    return out


@functools.lru_cache(maxsize=None)
def parsed(path: Path) -> tuple[str, ast.Module]:
    text = path.read_text()
    return text, ast.parse(text, filename=str(path))


def module_imports(name: str):
    path = package_modules()[name]
    return imports(parsed(path)[1], name, path.name == "__init__.py")


def layer_of(name: str) -> str | None:
    for layer in sorted(LAYERS, key=len, reverse=True):
        if within(name, (layer,)):
            return layer
    return None


# ----------------------------------------------------------------------------- the checkers (pure)

def core_purity_violations(source: str, module: str, where: str) -> list[str]:
    """Imports of a core module that reach outside the pure core."""
    return _per_line([(where, line, f"imports {name}") for line, _end, name, _fn, _tc in imports(ast.parse(source), module)
                      if within(name, CORE_FORBIDDEN)])


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def looks_like_sql(text: str) -> bool:
    return bool(_SQL_UPPER.match(text) or _SQL_ANY_CASE.match(text))


def _scopes(tree: ast.AST) -> dict[int, str]:
    """id(node) -> qualified name of the function or class it is in ('<module>' at the top)."""
    scope: dict[int, str] = {}

    def visit(node, name):
        for child in ast.iter_child_nodes(node):
            inner = name
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = child.name if name == "<module>" else f"{name}.{child.name}"
            scope[id(child)] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return scope


def sql_violations(source: str, where: str, allowed: dict[str, str] = ALLOWED_SQL) -> list[str]:
    """SQL executed (``.execute(`` & co.) or written (a string that reads as SQL) in ``source``."""
    tree = ast.parse(source)
    docstrings, scope, found = _docstring_nodes(tree), _scopes(tree), []
    # an f-string's parts are checked as one string (by its text before the first field)
    fstring_parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
            receiver = node.func.value
            if node.func.attr == "copy" and (not node.args or (isinstance(receiver, ast.Name)
                                                                and receiver.id in NOT_SQL_COPY_RECEIVERS)):
                continue  # dict.copy(), df.copy(deep=True), np.copy(a): not a COPY statement
            what = f".{node.func.attr}(...)"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | fstring_parts:
            if looks_like_sql(node.value):
                what = f"SQL string {node.value.strip()[:40]!r}"
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = str(node.values[0].value)
            if looks_like_sql(head + "x"):  # f"DROP DATABASE {name}": the text before the first field
                what = f"SQL f-string {head.strip()[:40]!r}"
        if what and f"{where}::{scope.get(id(node), '<module>')}" not in allowed:
            found.append(f"{where}:{node.lineno}: {what} in {scope.get(id(node), '<module>')}")
    return sorted(found, key=lambda s: (s.split(":")[0], int(s.split(":")[1]), s))


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (or a module importing itself), as a
    cycle path ``[a, b, ..., a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for comp in components:  # one concrete path through the component, for the message
        members, start = set(comp), comp[0]
        path, seen, node = [start], {start}, start
        while True:
            nxt = sorted(w for w in graph[node] if w in members)
            back = [w for w in nxt if w == start]
            unseen = [w for w in nxt if w not in seen]
            if back and (not unseen or len(path) > 1):
                path.append(start)
                break
            if not unseen:
                path.append(nxt[0])
                break
            node = unseen[0]
            path.append(node)
            seen.add(node)
        cycles.append(path)
    return cycles


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """Module-level imports between xbotlib modules (not under TYPE_CHECKING), with one file:line per edge."""
    modules = package_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    where: dict[tuple[str, str], str] = {}
    for m, path in modules.items():
        for line, _end, name, in_function, type_checking in module_imports(m):
            if in_function or type_checking or not within(name, ("xbotlib",)):
                continue
            target = name
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != "xbotlib":
                graph[m].add(target)
                where.setdefault((m, target), f"{rel(path)}:{line}")
    return graph, where


def size_violation(source: str, where: str, max_lines: int = MAX_LINES) -> str | None:
    n = len(source.splitlines())
    if n <= max_lines:
        return None
    doc = ast.get_docstring(ast.parse(source)) or ""
    if any(line.strip().startswith("Size:") and len(line.strip()) > len("Size:") + 3 for line in doc.splitlines()):
        return None
    return f"{where}: {n} lines (> {max_lines}) and no 'Size: <why>' line in the module docstring"


def _comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = out.get(tok.start[0], "") + tok.string
    return out


def _needs_reason(name: str) -> bool:
    top = name.split(".")[0]
    return top == "xbotlib" or (top not in sys.stdlib_module_names and top != "__future__")


def hidden_import_violations(source: str, module: str, where: str) -> list[str]:
    """Function-level imports of xbotlib or third-party modules without a comment saying why."""
    comments, found, lines = _comments(source), {}, source.splitlines()

    def above(line: int) -> int:
        """First line of the run of imports, blanks and comments that ends just above ``line``: one
        comment over a block of imports explains them all."""
        while line > 1 and (lines[line - 2].strip() == "" or lines[line - 2].lstrip().startswith(("import ", "from ", "#"))):
            line -= 1
        return line

    for line, end, name, in_function, _tc in imports(ast.parse(source), module):
        if not in_function or not _needs_reason(name):
            continue
        near = " ".join(comments.get(n, "") for n in range(above(line) - 1, (end or line) + 1)).lower()
        if not any(word in near for word in REASON_WORDS):
            found.setdefault(line, []).append(name)
    return [f"{where}:{line}: function-level import of {', '.join(dict.fromkeys(names))}"
            for line, names in sorted(found.items())]


def devtools_violations(source: str, module: str, where: str) -> list[str]:
    if within(module, DEVTOOLS_MAY_BE_IMPORTED_BY):
        return []
    return _per_line([(where, line, f"imports {name}") for line, _end, name, _fn, _tc in imports(ast.parse(source), module)
                      if within(name, ("xbotlib.devtools",))])


def layer_violations(source: str, module: str, where: str) -> list[str]:
    layer = layer_of(module)
    if layer is None:
        return []
    allowed = LAYERS[layer] + (("xbotlib.sim",) if module in SIM_IN_JOBS else ())
    return _per_line([(where, line, f"{layer} imports {name}")
                      for line, _end, name, _fn, _tc in imports(ast.parse(source), module)
                      if within(name, ("xbotlib",)) and name != "xbotlib" and not within(name, allowed)])


def _each(prefix: str = "xbotlib", exclude: tuple[str, ...] = ()):
    for m, path in package_modules().items():
        if within(m, (prefix,)) and not within(m, exclude):
            yield m, path, parsed(path)[0]


def _per_line(found: list[tuple[str, int, str]]) -> list[str]:
    """(where, line, text) -> one 'where:line: text, text' per line."""
    grouped: dict[tuple[str, int], list[str]] = {}
    for where, line, text in found:
        grouped.setdefault((where, line), []).append(text)
    return [f"{w}:{n}: {', '.join(dict.fromkeys(t))}" for (w, n), t in sorted(grouped.items())]


def _report(title: str, lines: list[str]) -> str:
    return f"{title} ({len(lines)}):\n  " + "\n  ".join(lines)


# ----------------------------------------------------------------------------- the package


def test_core_imports_nothing_outside_the_pure_core():
    bad = [v for m, path, src in _each("xbotlib.core") for v in core_purity_violations(src, m, rel(path))]
    assert not bad, _report("core/ must stay pure (no store, clients, jobs, app, sim, views, devtools, "
                            "psycopg, httpx)", bad)


def test_sql_lives_only_in_store():
    bad = [v for m, path, src in _each(exclude=("xbotlib.store",)) for v in sql_violations(src, rel(path))]
    assert not bad, _report("SQL outside xbotlib/store/ (move it into a store function `def name(conn, ...)`)", bad)


def test_the_sql_allow_list_is_justified_and_current():
    for key, reason in ALLOWED_SQL.items():
        path, _, scope = key.partition("::")
        assert len(reason.split()) >= 3, f"ALLOWED_SQL[{key!r}] needs a reason"
        assert (ROOT / path).exists() and not path.startswith("xbotlib/store/"), f"ALLOWED_SQL[{key!r}]: no such file"
        assert sql_violations((ROOT / path).read_text(), path, allowed={}), f"ALLOWED_SQL[{key!r}] is stale: remove it"
        assert scope, f"ALLOWED_SQL[{key!r}] must name the function ('path::function')"


def test_no_import_cycles():
    graph, where = import_graph()
    cycles = find_cycles(graph)
    lines = [" -> ".join(c) + "\n      " + ", ".join(where[(a, b)] for a, b in zip(c, c[1:])) for c in cycles]
    assert not cycles, _report("import cycles among xbotlib modules (module-level imports)", lines)


def test_no_module_is_oversized_without_a_reason():
    bad = [v for _m, path, src in _each() if (v := size_violation(src, rel(path)))]
    assert not bad, _report(f"modules over {MAX_LINES} lines: split them along their section banners, "
                            "or say why in a 'Size:' line of the module docstring", bad)


def test_function_level_imports_say_why():
    bad = [v for m, path, src in _each() for v in hidden_import_violations(src, m, rel(path))]
    assert not bad, _report("imports inside functions: move them to the top of the module, or say why (start-up "
                            f"time, a cycle, an optional dependency) in a comment with one of {REASON_WORDS}", bad)


def test_only_xbot_bench_imports_devtools():
    bad = [v for m, path, src in _each() for v in devtools_violations(src, m, rel(path))]
    assert not bad, _report("the product imports xbotlib.devtools (only xbotlib/app/cli/ may, for `xbot bench`)", bad)


def test_layers_import_downwards_only():
    bad = [v for m, path, src in _each() for v in layer_violations(src, m, rel(path))]
    assert not bad, _report("imports against the layering (core < store, clients, sim < jobs < app)", bad)


# ----------------------------------------------------------------------------- the checkers can fail

def test_checker_catches_an_impure_core_import():
    src = ("import numpy as np\nfrom xbotlib.core import vocab\n\n"
           "def f():\n    from xbotlib.sim.oracle import Oracle\n    import psycopg\n    return Oracle, psycopg\n"
           "from .. import views\n")
    assert core_purity_violations(src, "xbotlib.core.mod", "core/mod.py") == [
        "core/mod.py:5: imports xbotlib.sim.oracle", "core/mod.py:6: imports psycopg",
        "core/mod.py:8: imports xbotlib.views"]
    assert core_purity_violations("from xbotlib import store\n", "xbotlib.core.m", "m.py") == ["m.py:1: imports xbotlib.store"]


def test_checker_catches_sql_outside_store():
    src = '''"""SELECT lines in a docstring are prose."""
QUERY = """
    SELECT a, b FROM outcomes WHERE account_id = %s"""

def load(conn, acc):
    """Update the arms."""
    return conn.execute(QUERY, (acc,)).fetchall()

def bulk(conn, rows, name):
    with conn.cursor().copy("x") as c:
        pass
    conn.execute(f"DROP DATABASE {name}")
    lower = "delete from outcomes where true"
    prose = "select the best arm, then update the counts"
    return rows.copy(), dict(a=1).copy()
'''
    found = sql_violations(src, "jobs/x.py", allowed={})
    assert [f.split(":")[1] for f in found] == ["2", "7", "10", "10", "12", "12", "13"], found
    assert "in load" in found[1] and "in <module>" in found[0]
    assert sql_violations(src, "jobs/x.py", allowed={"jobs/x.py::load": "r", "jobs/x.py::bulk": "r",
                                                     "jobs/x.py::<module>": "r"}) == []
    assert not looks_like_sql("Update the arms") and not looks_like_sql("With the growth model")
    assert looks_like_sql("  INSERT INTO outcomes (a) VALUES (%s)") and looks_like_sql("LOCK TABLE x")
    assert looks_like_sql("WITH latest AS (SELECT 1) SELECT * FROM latest")


def test_checker_catches_a_cycle_and_names_it():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_checker_catches_an_oversized_module():
    big = "x = 1\n" * 401
    assert size_violation(big, "m.py") == "m.py: 401 lines (> 400) and no 'Size: <why>' line in the module docstring"
    assert size_violation('"""Doc.\n\nSize: one state machine, read top to bottom."""\n' + big, "m.py") is None
    assert size_violation("x = 1\n" * 400, "m.py") is None


def test_checker_catches_an_unexplained_hidden_import():
    src = ("def a():\n    import pandas\n"
           "def b():\n    # imported here: keeps `xbot --help` fast\n    import pandas\n"
           "def c():\n    from xbotlib.jobs import plan  # would be a cycle at module level\n"
           "def d():\n    import json\n"
           "def e():\n    from xbotlib.store import (\n        queue)\n")
    assert hidden_import_violations(src, "xbotlib.app.x", "x.py") == [
        "x.py:2: function-level import of pandas", "x.py:11: function-level import of xbotlib.store.queue"]
    # one comment explains the block of imports under it, not an import after other code
    block = ("def f():\n    # imported here: start-up time\n    import pandas\n\n    import numpy\n"
             "def g():\n    # imported here: start-up time\n    import pandas\n    x = 1\n    import numpy\n")
    assert hidden_import_violations(block, "xbotlib.app.x", "x.py") == ["x.py:10: function-level import of numpy"]


def test_checker_catches_devtools_in_the_product():
    src = "from xbotlib.devtools import bench\n"
    assert devtools_violations(src, "xbotlib.jobs.daemon", "d.py") == ["d.py:1: imports xbotlib.devtools.bench"]
    assert devtools_violations(src, "xbotlib.app.cli.bench", "b.py") == []


def test_checker_catches_an_upward_import():
    assert layer_violations("from xbotlib.jobs import plan\n", "xbotlib.store.queue", "q.py") == [
        "q.py:1: xbotlib.store imports xbotlib.jobs.plan"]
    assert layer_violations("from xbotlib.sim import SandboxX\n", "xbotlib.jobs.post", "p.py") == [
        "p.py:1: xbotlib.jobs imports xbotlib.sim"]
    assert layer_violations("from xbotlib.sim import SandboxX\n", "xbotlib.jobs.campaign", "c.py") == []


@pytest.mark.parametrize("name", ["xbotlib.core.policies", "xbotlib.store.outcomes", "xbotlib.app"])
def test_the_package_is_read(name):
    assert name in package_modules()
