"""What one GraphQL operation may ask for: depth, aliases, tokens (Strawberry's own limiters), an estimated
cost refused before anything runs, and inputs without NUL characters or absurd nesting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql.language import Visitor
from strawberry.extensions import (
    DisableIntrospection,
    IgnoreContext,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    visit,
)

# arguments that say how many items a list field answers: its selection counts that many times
SIZE_ARGUMENTS = ("first", "k", "limit", "last", "lastMessages")
# arguments that make one field's own work grow (graph traversals)
DEPTH_ARGUMENTS = ("depth", "maxDepth")
MAX_INPUT_NESTING = 32
# the most items any use case answers per list (larger sizes are refused there, with a typed error naming
# the argument): counting more would refuse before that clearer answer
SIZE_CAP = 200
DEPTH_CAP = 5


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 5_000
    timeout_seconds: float = 30.0
    ws_max_operations: int = 10
    ws_max_per_caller: int = 20
    introspection: bool = True
    suggestions: bool = True


def bad_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


def _introspection(context: IgnoreContext) -> bool:
    return context.field_name.startswith("__")


def limit_extensions(limits: GraphQLLimits) -> list:
    """Strawberry's limiters, each a validation rule or a parser option: refused before execution. One
    instance each for all operations, so the validation cache sees the same rules every time (they read
    the operation only while it starts, before anything can interleave)."""
    shared = [
        MaxTokensLimiter(max_token_count=limits.max_tokens),
        QueryDepthLimiter(max_depth=limits.max_depth, should_ignore=_introspection),
        MaxAliasesLimiter(max_alias_count=limits.max_aliases),
    ]
    if not limits.introspection:
        shared.append(DisableIntrospection())
    return [(lambda extension=extension: extension) for extension in shared]


class TolerantParserCache(ParserCache):
    """Parses each document once. A document that does not parse is left to Strawberry, which reports the
    syntax error as that operation's error (raised here, it escaped the operation: a bare `complete` on a
    websocket, an unshaped error over HTTP)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield


class InputGuard(SchemaExtension):
    """Before an operation runs: its inputs are clean and its estimated cost is within the limit."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        variables = context.variables or {}
        problem = _input_problem(variables)
        document = context.graphql_document
        if problem is None and document is not None:
            problem = _literal_problem(document)
        if problem:
            raise bad_input(problem)
        operation = operation_of(document, context.operation_name)
        if operation is not None:
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            schema: GraphQLSchema = context.schema._schema
            root = schema.get_root_type(operation.operation)
            cost = operation_cost(root, operation.selection_set, variables, fragments, schema)
            if cost > self.max_cost:
                raise bad_input(f"this operation could return about {cost} fields, more than the {self.max_cost} "
                                "allowed: ask for fewer items (first/k/limit) or fewer nested lists")
        yield


def operation_of(document, name: str | None) -> OperationDefinitionNode | None:
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _input_problem(value: Any) -> str | None:
    """NUL characters (Postgres refuses them in text) or nesting deeper than any Keel input: walked without
    recursion, so a hostile document cannot exhaust the stack here."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_INPUT_NESTING:
            return f"a variable is nested more than {MAX_INPUT_NESTING} levels deep"
        if isinstance(item, str):
            if "\x00" in item:
                return "text may not contain NUL characters (\\u0000)"
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return None


class _NulFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if "\x00" in node.value:
            self.found = True
            return Visitor.BREAK
        return None


def _literal_problem(document) -> str | None:
    finder = _NulFinder()
    visit(document, finder)
    return "text may not contain NUL characters (\\u0000)" if finder.found else None


def _number(node, variables: dict, default: Any, cap: int) -> int:
    if isinstance(node, IntValueNode):
        value: Any = node.value
    elif isinstance(node, VariableNode):
        value = variables.get(node.name.value, default)
    else:
        value = default
    try:
        return min(cap, max(1, int(value)))
    except (TypeError, ValueError):
        return 1


def _argument(field: FieldNode, definition, name: str, variables: dict, cap: int) -> int | None:
    if name not in definition.args:
        return None
    given = next((a.value for a in field.arguments or () if a.name.value == name), None)
    default = definition.args[name].default_value
    return _number(given, variables, default if isinstance(default, int) else 1, cap)


def operation_cost(parent, selection_set: SelectionSetNode, variables: dict, fragments: dict,
                   schema: GraphQLSchema) -> int:
    """Every field counts 1 (times its depth argument); a list field's selection counts `first`/`k`/`limit`
    times. An upper bound: every branch of a union counts."""
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            fields = parent.fields if isinstance(parent, GraphQLObjectType) else {}
            definition = fields.get(name) if not name.startswith("__") else None
            if definition is None:
                total += 1
                continue
            own = 1
            for argument in DEPTH_ARGUMENTS:
                own *= _argument(selection, definition, argument, variables, DEPTH_CAP) or 1
            size = 1
            for argument in SIZE_ARGUMENTS:
                size *= _argument(selection, definition, argument, variables, SIZE_CAP) or 1
            child = 0
            if selection.selection_set is not None:
                child = operation_cost(get_named_type(definition.type), selection.selection_set, variables,
                                       fragments, schema)
            total += own + size * child
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = schema.get_type(condition.name.value) if condition else parent
            total += operation_cost(target or parent, selection.selection_set, variables, fragments, schema)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                target = schema.get_type(fragment.type_condition.name.value) or parent
                total += operation_cost(target, fragment.selection_set, variables, fragments, schema)
    return total
