"""An eval's ``item_schema``: a tenant's JSON schema, which the API runs over every item of
every run, so it is checked for what it could make the API do before it is stored.

A schema is data the tenant wrote, and ``jsonschema`` will do whatever it says: fetch a
remote ``$ref`` (a request from inside Quanta's network to any address), recurse
forever on ``{"$ref": "#"}``, match a catastrophic ``pattern`` for hours, or apply
``2**n`` subschemas to one value through ``$ref``\\ s that share their targets. So:

- it is bounded in size and depth, and must be a valid JSON Schema 2020-12 (its
  metaschema; no other ``$schema``; no NaN or infinity);
- it is one document: ``$ref`` and ``$dynamicRef`` point inside it (``#...``), each
  must resolve there, and no subschema has an ``$id`` of its own; items are validated
  with an empty ``referencing.Registry``, which retrieves nothing;
- Quanta does not run tenant regular expressions in the API: ``pattern``,
  ``patternProperties`` and ``format: regex`` are refused;
- the subschemas it applies to one value (``allOf``/``anyOf``/``oneOf``/``not``/``if``/
  ``then``/``else``/``dependentSchemas`` and ``$ref``) form no cycle and stay few, and
  an item is checked only if it nests shallowly enough for ``jsonschema``'s recursion
  (``MAX_DESCENT``) through them;
- checking items has a budget of steps (each keyword applied costs one, plus the
  size of the value and of the schema it compares; ``uniqueItems`` the square), so
  no schema can make a run's creation take more than a few seconds.

:func:`check_item_schema` answers at eval creation; :class:`ItemChecker` validates a
run's items (checking the stored schema again, since an eval may predate a rule).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any

from tune.evals.errors import EvalRequestError

PARAM = "data_source_config.item_schema"
MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 32  # JSON nesting of the schema document
MAX_IN_PLACE = 1000  # subschemas applied to one value, $refs followed
MAX_CHAIN = 32  # subschemas applied to one value one inside the other
# jsonschema recurses (about 4 Python frames) for each subschema it applies inside
# another: at most (the item's depth + 1) * the longest chain, under Python's limit of
# 1000 frames (a RecursionError inside referencing's Rust maps is a panic, not an error).
MAX_DESCENT = 150
BUDGET = 1_000_000  # steps to check all of a run's items: a few seconds at most
DIALECTS = frozenset({"https://json-schema.org/draft/2020-12/schema",
                      "https://json-schema.org/draft/2020-12/schema#"})
REGEXES = ("pattern", "patternProperties")
# Where a 2020-12 schema holds subschemas: applied to the same value ("in place"), to
# the value's members, or only where a $ref points.
IN_PLACE_ONE = ("not", "if", "then", "else")
IN_PLACE_LIST = ("allOf", "anyOf", "oneOf")
IN_PLACE_MAP = ("dependentSchemas",)
MEMBER_ONE = ("additionalProperties", "items", "contains", "propertyNames",
              "unevaluatedItems", "unevaluatedProperties")
MEMBER_LIST = ("prefixItems",)
MEMBER_MAP = ("properties", "patternProperties", "$defs", "definitions")
REFS = ("$ref", "$dynamicRef")

_budget: ContextVar[list[int] | None] = ContextVar("item_schema_budget", default=None)


class SchemaTooCostly(RuntimeError):
    """Checking items against the schema ran past its budget of steps."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"checking the items against the eval's item_schema takes more "
                         f"than {budget} steps")


def _refuse(where: str, message: str) -> EvalRequestError:
    return EvalRequestError(f"{where}: {message}", where)


# -- at eval creation ------------------------------------------------------------------------

def check_item_schema(schema: Any, param: str = PARAM) -> int:
    """Refuse (EvalRequestError naming the place in ``param``) a schema Quanta will not
    run; see the module's docstring for the rules. Returns its longest chain of
    subschemas applied to one value."""
    if not isinstance(schema, dict):
        raise _refuse(param, "a JSON schema (an object) of each item")
    _check_size(schema, param)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    dialect = schema.get("$schema")
    if dialect is not None and dialect not in DIALECTS:
        raise _refuse(f"{param}.$schema", "Quanta checks items with JSON Schema 2020-12 "
                      f"({sorted(DIALECTS)[0]}); leave $schema out or name it")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise _refuse(param, f"not a valid JSON schema: {exc.message}") from None
    return _Walk(schema, param).check()


def _check_size(schema: dict[str, Any], param: str) -> None:
    """At most MAX_DEPTH deep (walked without recursion: a deep schema must not blow the
    stack of what checks it) and MAX_SCHEMA_BYTES as JSON."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse(param, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, float) and not math.isfinite(node):
            raise _refuse(param, f"{node} is not a number JSON has")
        children = (node.values() if isinstance(node, dict)
                    else node if isinstance(node, list) else ())
        stack.extend((child, depth + 1) for child in children)
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise _refuse(param, f"larger than {MAX_SCHEMA_BYTES // 1024} KiB as JSON")


class _Walk:
    """Every subschema the schema can apply, by its place (and where a $ref points
    outside the places subschemas have); what each applies to the same value."""

    def __init__(self, schema: dict[str, Any], param: str) -> None:
        from referencing import Registry
        from referencing.jsonschema import DRAFT202012

        self.root, self.param = schema, param
        self.resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
        self.where: dict[int, str] = {}  # id of a visited subschema -> its place
        self.in_place: dict[int, list[int]] = {}
        self.refs: list[tuple[int, str, str]] = []  # (from, ref, its place)

    def check(self) -> int:
        """Refuse what Quanta will not run; the longest chain of subschemas applied to
        one value."""
        self._visit(self.root, self.param)
        while self.refs:
            source, ref, where = self.refs.pop()
            target = self._resolve(ref, where)
            if id(target) not in self.where:
                self._check_target(target, ref, where)
                self._visit(target, f"{where}->{ref}")
            if isinstance(target, dict):
                self.in_place[source].append(id(target))
        return self._check_in_place()

    def _resolve(self, ref: Any, where: str) -> Any:
        from referencing.exceptions import Unresolvable

        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _refuse(where, "a reference must point inside the item_schema (start "
                          "with '#'): Quanta fetches no other schema")
        try:
            return self.resolver.lookup(ref).contents
        except Unresolvable:
            raise _refuse(where, f"{ref!r} points at nothing in the item_schema") from None

    def _check_target(self, target: Any, ref: str, where: str) -> None:
        """A $ref that points where no subschema is (into an ``enum``, say): what it
        points at must be a schema all the same."""
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        if not isinstance(target, dict | bool):
            raise _refuse(where, f"{ref!r} points at something that is not a schema")
        try:
            Draft202012Validator.check_schema(target)
        except SchemaError as exc:
            raise _refuse(where, f"{ref!r} points at an invalid schema: "
                          f"{exc.message}") from None

    def _visit(self, schema: Any, where: str) -> None:
        stack = [(schema, where)]
        while stack:
            node, at = stack.pop()
            if not isinstance(node, dict) or id(node) in self.where:
                continue
            self.where[id(node)] = at
            self.in_place[id(node)] = []
            self._check_keywords(node, at)
            for keyword in REFS:
                if keyword in node:
                    self.refs.append((id(node), node[keyword], f"{at}.{keyword}"))
            for keyword, child, child_at in _subschemas(node, at):
                stack.append((child, child_at))
                if keyword in IN_PLACE_ONE + IN_PLACE_LIST + IN_PLACE_MAP and isinstance(
                        child, dict):
                    self.in_place[id(node)].append(id(child))

    def _check_keywords(self, node: dict[str, Any], at: str) -> None:
        for keyword in REGEXES:
            if keyword in node:
                raise _refuse(f"{at}.{keyword}", "Quanta does not run tenant regular "
                              "expressions in the API: pattern, patternProperties and "
                              "format 'regex' are not supported in an item_schema")
        if node.get("format") == "regex":
            raise _refuse(f"{at}.format", "Quanta does not run tenant regular expressions "
                          "in the API: format 'regex' is not supported in an item_schema")
        if node is not self.root:
            for keyword in ("$id", "$schema"):
                if keyword in node:
                    raise _refuse(f"{at}.{keyword}", "an item_schema is one document: "
                                  f"{keyword} only at its top")

    def _check_in_place(self) -> int:
        """No cycle of subschemas applied to one value ({"$ref": "#"} recurses forever),
        at most MAX_IN_PLACE of them from any one (shared $ref targets multiply) and
        at most MAX_CHAIN one inside the other; the longest chain."""
        count: dict[int, int] = {}
        chain: dict[int, int] = {}
        for start in self.in_place:
            if start in count:
                continue
            path, on_path = [(start, iter(self.in_place[start]))], {start}
            while path:
                node, successors = path[-1]
                successor = next(successors, None)
                if successor is None:
                    path.pop()
                    on_path.discard(node)
                    count[node] = min(MAX_IN_PLACE + 1, 1 + sum(
                        count[s] for s in self.in_place[node]))
                    chain[node] = 1 + max((chain[s] for s in self.in_place[node]), default=0)
                    if count[node] > MAX_IN_PLACE:
                        raise _refuse(self.where[node], "applies more than "
                                      f"{MAX_IN_PLACE} subschemas to one value")
                    if chain[node] > MAX_CHAIN:
                        raise _refuse(self.where[node], "applies subschemas more than "
                                      f"{MAX_CHAIN} deep (one inside the other) to one value")
                elif successor in on_path:
                    raise _refuse(self.where[successor], "applies itself to the same value "
                                  "again (a $ref cycle that never descends into the item)")
                elif successor not in count:
                    path.append((successor, iter(self.in_place[successor])))
                    on_path.add(successor)
        return max(chain.values(), default=1)


def _subschemas(node: dict[str, Any], at: str) -> Iterator[tuple[str, Any, str]]:
    """(keyword, subschema, its place) of each subschema written in ``node``."""
    for keyword in IN_PLACE_ONE + MEMBER_ONE:
        if keyword in node:
            yield keyword, node[keyword], f"{at}.{keyword}"
    for keyword in IN_PLACE_LIST + MEMBER_LIST:
        for index, child in enumerate(node.get(keyword) or ()):
            yield keyword, child, f"{at}.{keyword}[{index}]"
    for keyword in IN_PLACE_MAP + MEMBER_MAP:
        value = node.get(keyword)
        if isinstance(value, dict):
            for name, child in value.items():
                yield keyword, child, f"{at}.{keyword}.{name}"


# -- at run creation -------------------------------------------------------------------------

class ItemChecker:
    """Validates a run's items against an eval's item schema within one budget of steps
    (SchemaTooCostly past it); ``$ref``\\ s resolve only inside the schema."""

    def __init__(self, schema: dict[str, Any], budget: int | None = None) -> None:
        self._chain = check_item_schema(schema)
        from referencing import Registry

        own = copy.deepcopy(schema)
        # Validated as 2020-12 whatever it says: a $schema would make jsonschema switch
        # to its own validator class (without the budget) wherever a $ref lands on it.
        own.pop("$schema", None)
        self._validator = _budgeted()(own, registry=Registry())
        budget = BUDGET if budget is None else budget
        self._left = [budget, budget]  # steps left, of how many

    def first_error(self, item: Any) -> Any:
        """The item's first ValidationError, or None. SchemaTooCostly past the budget;
        EvalRequestError when the schema cannot be applied (a reference it cannot
        resolve, or one that recurses without end)."""
        from referencing.exceptions import Unresolvable

        depth = _depth(item)
        if (depth + 1) * self._chain > MAX_DESCENT:
            raise _refuse(PARAM, f"the item nests {depth} levels deep, too deep to check "
                          f"against it (its subschemas apply up to {self._chain} deep to "
                          f"one value; Quanta follows at most {MAX_DESCENT} in all)")
        token = _budget.set(self._left)
        try:
            return next(iter(self._validator.iter_errors(item)), None)
        except Unresolvable as exc:
            raise _refuse(PARAM, f"a reference cannot be resolved: {exc}") from None
        except RecursionError:
            raise _refuse(PARAM, "it recurses without end on this item") from None
        finally:
            _budget.reset(token)


def _depth(value: Any) -> int:
    """How many containers deep ``value`` nests (a scalar: 0), walked without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (
                node.values() if isinstance(node, dict) else node))
    return deepest


def _size(value: Any) -> int:
    return len(value) if isinstance(value, dict | list) else 0


def _counted(keyword: str, check: Any) -> Any:
    """``check`` (a keyword's validation function) charging the budget first."""
    square = keyword == "uniqueItems"

    def counted(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        left = _budget.get()
        if left is not None:
            size = _size(instance)
            left[0] -= 1 + _size(value) + size + (size * size // 8 if square else 0)
            if left[0] < 0:
                raise SchemaTooCostly(left[1])
        yield from check(validator, value, instance, schema) or ()

    return counted


@cache
def _budgeted() -> Any:
    """Draft 2020-12's validator class, each keyword charging the budget."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    return extend(Draft202012Validator, {keyword: _counted(keyword, check) for keyword, check
                                         in Draft202012Validator.VALIDATORS.items()})
