"""environment.yml (conda) and pyproject.toml (pip) name the same dependencies with the same bounds."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def normalise(requirement: str) -> tuple[str, str]:
    """('name[extras]', 'specifiers') in one spelling: PEP 503 name, sorted extras and clauses, no spaces."""
    m = _REQ.match(requirement)
    if not m or ";" in requirement:
        raise ValueError(f"cannot read requirement {requirement!r} (expected name[extras] specifiers)")
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    extras = ",".join(sorted(e.strip().lower() for e in (m.group(2) or "[]")[1:-1].split(",") if e.strip()))
    spec = ",".join(sorted(c.replace(" ", "") for c in m.group(3).split(",") if c.strip()))
    return name + (f"[{extras}]" if extras else ""), spec


def pyproject_requirements(text: str) -> list[str]:
    project = tomllib.loads(text)["project"]
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return reqs


def environment_pip_requirements(text: str) -> list[str]:
    """The entries of the ``- pip:`` list in a conda environment file (no YAML library needed)."""
    reqs, in_pip, pip_indent = [], False, None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if item in ("- pip:", "-pip:"):
            in_pip, pip_indent = True, indent
            continue
        if in_pip:
            if indent <= pip_indent:
                in_pip = False
            elif item.startswith("- "):
                reqs.append(item[2:].strip().strip("'\""))
    return reqs


def environment_conda_packages(text: str) -> dict[str, str]:
    out = {}
    for raw in text.splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)\s*(?:=+\s*([^\s#]+))?\s*$", raw)
        if m:
            out[m.group(1)] = m.group(2) or ""
    return out


def as_map(reqs: list[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in reqs:
        name, spec = normalise(r)
        assert name not in out, f"{name} is listed twice in {where}"
        out[name] = spec
    return out


PYPROJECT = (REPO / "pyproject.toml").read_text()
ENVIRONMENT = (REPO / "environment.yml").read_text()


def test_the_parsers_read_both_files():
    assert len(pyproject_requirements(PYPROJECT)) >= 20
    assert len(environment_pip_requirements(ENVIRONMENT)) >= 20
    assert normalise("psycopg[binary] >=3.2, <4") == ("psycopg[binary]", "<4,>=3.2")
    assert normalise("Scikit_Learn>=1.4,<2") == ("scikit-learn", "<2,>=1.4")


def test_every_pyproject_dependency_is_in_environment_yml_with_the_same_bounds():
    pip = as_map(pyproject_requirements(PYPROJECT), "pyproject.toml")
    conda = as_map(environment_pip_requirements(ENVIRONMENT), "environment.yml")
    missing = sorted(set(pip) - set(conda))
    extra = sorted(set(conda) - set(pip))
    differ = sorted(f"{n}: pyproject {pip[n]!r} vs environment.yml {conda[n]!r}"
                    for n in set(pip) & set(conda) if pip[n] != conda[n])
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not extra, f"in environment.yml but not pyproject.toml: {extra}"
    assert not differ, "different bounds:\n" + "\n".join(differ)


def test_conda_python_satisfies_requires_python():
    requires = tomllib.loads(PYPROJECT)["project"]["requires-python"]
    python = environment_conda_packages(ENVIRONMENT).get("python")
    assert python, "environment.yml pins no python version"
    version = tuple(int(p) for p in python.split(".")[:2])
    for clause in requires.split(","):
        m = re.fullmatch(r"\s*(>=|<|<=|>|==)\s*(\d+)\.(\d+)\s*", clause)
        assert m, f"cannot read requires-python clause {clause!r}"
        bound = (int(m.group(2)), int(m.group(3)))
        ok = {">=": version >= bound, "<": version < bound, "<=": version <= bound,
              ">": version > bound, "==": version == bound}[m.group(1)]
        assert ok, f"environment.yml python={python} violates requires-python {requires!r}"
    assert "pip" in environment_conda_packages(ENVIRONMENT)


@pytest.mark.parametrize("text, expected", [
    ("dependencies:\n  - pip\n  - pip:\n      - a>=1\n      - b[x]==2  # note\n  - other\n", ["a>=1", "b[x]==2"]),
    ("dependencies:\n  - pip:\n    - 'c<3'\nname: z\n", ["c<3"]),
])
def test_pip_list_parser(text, expected):
    assert environment_pip_requirements(text) == expected
