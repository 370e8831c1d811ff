"""The cheap structural pass: bounds on a parsed document before it is validated.

Validation, normalization and the precise limits (`limits.py`) all cost time
in proportion to the document with its fragments expanded, which can be
exponential in the document's size (fragments spreading each other twice) or
merely large (10,000 aliases). This pass walks the parsed document once,
computing each fragment's counts once and multiplying them by its spreads, so
its own cost is linear in the document's size whatever the expansion; it
refuses with `QUERY_TOO_COMPLEX` before any of that work starts.

Counted with fragments expanded and before fields are merged (so a fragment
spread twice counts twice): field selections and aliases, introspection
included (`__schema`/`__type` are answered from memory, but not for free),
directives, and the depth of fields outside introspection (whose nesting
validation bounds). Variable definitions are counted per operation. A
fragment spread inside itself is refused; unknown fragments are left to
validation.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from veche_gateway.errors import BAD_USER_INPUT, QUERY_TOO_COMPLEX, RequestError
from veche_gateway.normalize import INTROSPECTION_FIELDS

# Selection sets and fragment spreads nested deeper than this are refused whatever
# the settings: this walk and the recursive passes after it (validation rules,
# normalization) must stay far from Python's recursion limit. Introspection's
# own nesting counts here.
MAX_NESTING = 64


@dataclass(frozen=True)
class StructureLimits:
    max_depth: int
    max_aliases: int
    max_selections: int
    max_directives: int
    max_variables: int


@dataclass(frozen=True)
class Counts:
    """A selection set's counts with its fragments expanded."""

    selections: int = 0
    aliases: int = 0
    directives: int = 0
    depth: int = 0  # levels of fields below it, introspection left out
    nesting: int = 0  # levels of selection sets below it, everything counted


class _Walker:
    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.done: dict[str, Counts] = {}
        self.in_progress: set[str] = set()

    def fragment(self, name: str, level: int) -> Counts:
        found = self.done.get(name)
        if found is not None:
            return found
        definition = self.fragments.get(name)
        if definition is None:
            return Counts()  # validation names the unknown fragment
        if name in self.in_progress:
            raise RequestError(f'Cannot spread fragment "{name}" within itself.', BAD_USER_INPUT)
        self.in_progress.add(name)
        found = self.selection_set(
            definition.selection_set, level, len(definition.directives or ())
        )
        self.in_progress.discard(name)
        self.done[name] = found
        return found

    def selection_set(self, node: SelectionSetNode, level: int, directives: int = 0) -> Counts:
        """`level`: selection sets and fragments entered above this one (its nesting
        where it is first walked: a fragment's counts are reused wherever it is spread)."""
        if level >= MAX_NESTING:
            raise _nested_too_deeply()
        selections = aliases = depth = nesting = 0
        for selection in node.selections:
            directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                selections += 1
                aliases += selection.alias is not None
                if selection.selection_set is None:
                    depth = max(depth, 1)
                    continue
                child = self.selection_set(selection.selection_set, level + 1)
                selections += child.selections
                aliases += child.aliases
                directives += child.directives
                nesting = max(nesting, child.nesting + 1)
                if selection.name.value in INTROSPECTION_FIELDS:
                    continue  # its nesting is bounded at validation, not by max_depth
                depth = max(depth, child.depth + 1)
                continue
            if isinstance(selection, InlineFragmentNode):
                child = self.selection_set(selection.selection_set, level + 1)
            else:
                assert isinstance(selection, FragmentSpreadNode)
                child = self.fragment(selection.name.value, level + 1)
            selections += child.selections
            aliases += child.aliases
            directives += child.directives
            depth = max(depth, child.depth)
            nesting = max(nesting, child.nesting + 1)
        if nesting >= MAX_NESTING:
            raise _nested_too_deeply()
        return Counts(selections, aliases, directives, depth, nesting)


def check_structure(document: DocumentNode, limits: StructureLimits) -> None:
    """Raise `RequestError` when any operation of the document exceeds a limit."""
    walker = _Walker(document)
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        variables = len(definition.variable_definitions or ())
        if variables > limits.max_variables:
            raise _too_complex(
                f"it declares {variables} variables, the limit is {limits.max_variables}",
                f"в ней {variables} переменных, предел — {limits.max_variables}",
            )
        counts = walker.selection_set(definition.selection_set, 0, len(definition.directives or ()))
        checks = (
            ("depth", "глубина", counts.depth, limits.max_depth),
            ("number of aliases", "число псевдонимов", counts.aliases, limits.max_aliases),
            (
                "number of field selections",
                "число выбранных полей",
                counts.selections,
                limits.max_selections,
            ),
            ("number of directives", "число директив", counts.directives, limits.max_directives),
        )
        for what, what_ru, value, limit in checks:
            if value > limit:
                raise _too_complex(
                    f"its {what} is {value}, the limit is {limit}",
                    f"её {what_ru} — {value}, предел — {limit}",
                )


def _nested_too_deeply() -> RequestError:
    return _too_complex(
        f"its selections and fragments are nested more than {MAX_NESTING} levels deep",
        f"её выборки и фрагменты вложены глубже {MAX_NESTING} уровней",
    )


def _too_complex(detail: str, ru: str) -> RequestError:
    return RequestError(
        f"The operation is too complex: {detail}",
        QUERY_TOO_COMPLEX,
        ru=f"Операция слишком сложна: {ru}",
    )
