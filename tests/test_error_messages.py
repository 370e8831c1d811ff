"""Every refusal a person reads is said in Russian and in English: each construction of a
`DomainError` (and an `Open311Error`, an `ImageRefused`, a rate-limit `Window`) in
services/*/src and libs/*/src passes `ru=` with Cyrillic text, and its English message
has none.

Read from the source (AST), so a new raise without its Russian fails here before any
request meets it. A `ru` that is a name is followed to what it is bound to: a constant
of the module, an assignment in the function, or, for a parameter, what each caller
of the function passes for it; `error.ru` passes on an error that has both already.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import veche_issues.errors
import veche_polls.errors
import veche_users.errors
from veche_kit.errors import DomainError

ROOT = Path(__file__).resolve().parents[1]
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    return found | {sub for child in found for sub in _subclasses(child)}


# Imported for their DomainError subclasses (ALREADY_VOTED, OUT_OF_STOCK...).
SERVICE_ERRORS = (veche_issues.errors, veche_polls.errors, veche_users.errors)


@dataclass(frozen=True)
class Site:
    """Where a refusal is built: the positional index of its English text, and of its
    Russian when that is positional too (else `ru=`)."""

    message_at: int
    ru_at: int | None = None


SITES = {cls.__name__: Site(0) for cls in {DomainError, *_subclasses(DomainError)}}
SITES |= {"Open311Error": Site(1), "ImageRefused": Site(2), "Window": Site(2, 3)}


def _sources() -> Iterator[Path]:
    for pattern in ("services/*/src/**/*.py", "libs/*/src/**/*.py"):
        yield from sorted(ROOT.glob(pattern))


def _name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _texts(node: ast.AST) -> str:
    """The literal text in an expression: its string constants and f-strings' parts."""
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


class Module:
    """One source file, with what its names are bound to."""

    def __init__(self, path: Path, tree: ast.Module) -> None:
        self.path = path
        self.tree = tree
        self.parents = {
            child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
        }

    def function_of(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None

    def bound(self, name: str, scope: ast.AST) -> list[ast.expr]:
        """The values assigned to `name` in `scope` (not descending into other functions)."""
        values = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    values += _assigned(target, node.value, name)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                values += _assigned(node.target, node.value, name)
        return values


def _assigned(target: ast.expr, value: ast.expr, name: str) -> list[ast.expr]:
    if isinstance(target, ast.Name):
        return [value] if target.id == name else []
    if isinstance(target, ast.Tuple):
        found = []
        for index, element in enumerate(target.elts):
            if isinstance(element, ast.Name) and element.id == name:
                found += [v.elts[index] for v in _choices(value) if isinstance(v, ast.Tuple)]
        return found
    return []


def _choices(value: ast.expr) -> list[ast.expr]:
    return [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]


class Checker:
    """Finds every refusal whose Russian is missing or not Russian, or whose English is not."""

    def __init__(self, modules: list[Module]) -> None:
        self.modules = modules

    def problems(self) -> Iterator[str]:
        for module in self.modules:
            for call in ast.walk(module.tree):
                if isinstance(call, ast.Call) and (site := SITES.get(_name(call) or "")):
                    yield from self._check(module, call, site)

    def _check(self, module: Module, call: ast.Call, site: Site) -> Iterator[str]:
        where = f"{module.path.relative_to(ROOT)}:{call.lineno}"
        message = _argument(call, site.message_at, ("message", "description"))
        if message is not None and CYRILLIC.search(_texts(message)):
            yield f"{where}: the English message has Cyrillic letters"
        ru = _argument(call, site.ru_at, ("ru",))
        if ru is None:
            yield f"{where}: no `ru=`"
        elif not self._russian(module, call, ru, message, depth=0):
            yield f"{where}: `ru` has no Russian text"

    def _russian(
        self, module: Module, at: ast.AST, ru: ast.expr, message: ast.expr | None, depth: int
    ) -> bool:
        if CYRILLIC.search(_texts(ru)):
            return True
        if isinstance(ru, ast.Attribute) and ru.attr == "ru":
            return isinstance(message, ast.Attribute) and message.attr in ("message", "description")
        if not isinstance(ru, ast.Name) or depth > 3:
            return False
        function = module.function_of(at)
        values = module.bound(ru.id, function) if function else []
        values = values or module.bound(ru.id, module.tree)
        if values:
            return all(self._russian(module, ru, v, None, depth + 1) for v in values)
        if function is not None and ru.id in [a.arg for a in function.args.args]:
            return self._callers_pass_russian(function, ru.id, depth)
        return False

    def _callers_pass_russian(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, parameter: str, depth: int
    ) -> bool:
        position = [a.arg for a in function.args.args].index(parameter)
        passed = [
            (module, call, _argument(call, position, (parameter,)))
            for module in self.modules
            for call in ast.walk(module.tree)
            if isinstance(call, ast.Call) and _name(call) == function.name
        ]
        return bool(passed) and all(
            value is not None and self._russian(module, call, value, None, depth + 1)
            for module, call, value in passed
        )


def _argument(call: ast.Call, position: int | None, names: tuple[str, ...]) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg in names:
            return keyword.value
    if position is not None and position < len(call.args):
        return call.args[position]
    return None


def _modules(sources: dict[Path, str]) -> list[Module]:
    return [Module(path, ast.parse(text)) for path, text in sources.items()]


def test_every_refusal_in_the_code_is_said_in_russian_and_in_english() -> None:
    modules = _modules({path: path.read_text() for path in _sources()})
    sites = sum(
        1
        for m in modules
        for c in ast.walk(m.tree)
        if isinstance(c, ast.Call) and _name(c) in SITES
    )
    assert sites > 250  # the walk reaches the services and the kit
    assert list(Checker(modules).problems()) == []


BAD = """
def refuse(poll_id, what, ru):
    raise NotFoundError(f"No poll {poll_id}.")
    raise NotFoundError(f"No poll {poll_id}.", ru=f"No poll {poll_id}.")
    raise ForbiddenError(f"Нет {what}.", ru=f"Нет {what}.")
    raise ForbiddenError(f"Only {what}.", ru=ru)

refuse("p", "x", "only English")
"""


def test_the_check_finds_a_missing_an_english_or_a_passed_on_english_ru() -> None:
    found = list(Checker(_modules({ROOT / "bad.py": BAD})).problems())
    assert found == [
        "bad.py:3: no `ru=`",
        "bad.py:4: `ru` has no Russian text",
        "bad.py:5: the English message has Cyrillic letters",
        "bad.py:6: `ru` has no Russian text",
    ]
