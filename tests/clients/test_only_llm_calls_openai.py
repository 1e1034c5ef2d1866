"""Only xbotlib/clients/llm.py may import the OpenAI SDK: every call must go through the budget ledger."""
from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"xbotlib/clients/llm.py"}


def imports_openai(source: str) -> bool:
    """True when the code imports openai (import / from-import / importlib / __import__)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        # notebook magics or half-written code: fall back to a plain text check
        return any(line.strip().startswith(("import openai", "from openai")) for line in source.splitlines())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "openai" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "openai" and node.level == 0:
            return True
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("import_module", "__import__") and str(node.args[0].value).split(".")[0] == "openai":
                return True
    return False


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text()).get("cells", [])
    code = ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
    # drop IPython magics so the rest still parses
    return "\n".join(line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def sources() -> list[tuple[str, str]]:
    found = []
    for folder in ("xbotlib", "notebooks", "bench"):
        base = ROOT / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            found.append((path.relative_to(ROOT).as_posix(), path.read_text(errors="replace")))
        for path in sorted(base.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts:
                found.append((path.relative_to(ROOT).as_posix(), notebook_code(path)))
    return found


def test_the_detector_sees_every_import_form():
    for code in ("import openai", "import openai.types as t", "from openai import OpenAI", "from openai.types import X",
                 "importlib.import_module('openai')", "__import__('openai')", "def f():\n    import openai\n"):
        assert imports_openai(code), code
    for code in ("import openapi_spec", "from .openai_compat import x", "x = 'import openai'", "from xbotlib import llm"):
        assert not imports_openai(code), code


def test_only_llm_module_imports_openai():
    files = sources()
    assert any(name == "xbotlib/clients/llm.py" for name, _ in files)
    offenders = [name for name, code in files if name not in ALLOWED and imports_openai(code)]
    assert offenders == [], (f"these files import openai directly: {offenders} "
                             "(call xbotlib.clients.llm.LLMClient instead, so every call is budgeted)")
    assert imports_openai(dict(files)["xbotlib/clients/llm.py"])
