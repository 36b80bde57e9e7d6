"""What a dry run can say of an operation's `_if=` condition, which pyinfra evaluates only while executing.

A condition on earlier operations is judged from their own predictions (three-valued: True, False, None for
unknown), never by calling it:

- `op.did_change` / `did_not_change` / `did_succeed` / `did_error`, pyinfra's `any_changed(...)` /
  `all_changed(...)`, and a list of conditions (all must hold);
- a lambda or a one-line `def` whose body is `and` / `or` / `not` of those calls on earlier operations (read
  from its source, e.g. `lambda: conf.did_change() and not started.did_change()`);
- any other function that reads earlier operations: no change when none of them will change, else unknown;
- a condition that reads no earlier operation: unknown, with the reason.
"""

from __future__ import annotations

import ast
import functools
import linecache
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

Prediction = bool | None  # will it change: yes, no, or nobody can know before applying
CALLS = {"did_change", "did_not_change", "did_succeed", "did_error"}


@dataclass(frozen=True)
class Judgement:
    holds: Prediction  # will the condition be true when applied
    reason: str | None = None  # why nobody can know (when `holds` is None)


class Unreadable(Exception):
    """A condition's expression holds more than and/or/not of earlier operations' did_* calls."""


def is_operation(value: Any) -> bool:
    """pyinfra's OperationMeta (or a stand-in): what an earlier operation call returned."""
    return hasattr(value, "will_change") and hasattr(value, "did_change")


def judge(cond: Any, predicted: Callable[[Any], Prediction], name: Callable[[Any], str]) -> Judgement:
    """Whether `cond` (an operation's `_if`) will hold when applied. `predicted(meta)` is an earlier
    operation's own prediction on this host; `name(meta)` its name, for the reasons."""
    if cond is None:
        return Judgement(True)
    if isinstance(cond, list):
        parts = [judge(c, predicted, name) for c in cond]
        holds = kleene_all([p.holds for p in parts])
        reasons = [p.reason for p in parts if p.holds is None and p.reason]
        return Judgement(holds, "; ".join(reasons) if holds is None else None)
    meta = getattr(cond, "__self__", None)
    if meta is not None and is_operation(meta):
        return _method(meta, getattr(cond, "__name__", ""), predicted, name)
    combined = _pyinfra_helper(cond)
    if combined is not None:
        kind, metas = combined
        answers = [predicted(m) for m in metas]
        holds = kleene_any(answers) if kind == "any_changed" else kleene_all(answers)
        return Judgement(holds, None if holds is not None else _unknown_inputs(metas, predicted, name))
    return _function(cond, predicted, name)


def _method(meta: Any, method: str, predicted: Callable[[Any], Prediction], name: Callable[[Any], str]) -> Judgement:
    if method not in CALLS:
        return Judgement(None, f"conditional (_if) on {name(meta)}.{method}: only known when applied")
    holds = _call(method, predicted(meta))
    return Judgement(holds, None if holds is not None else _unknown_inputs([meta], predicted, name))


def _call(method: str, change: Prediction) -> Prediction:
    """What `meta.METHOD()` will say, from the operation's predicted change (a dry run predicts success)."""
    if method == "did_succeed":
        return True
    if method == "did_error":
        return False
    if change is None:
        return None
    return change if method == "did_change" else not change


def _function(cond: Any, predicted: Callable[[Any], Prediction], name: Callable[[Any], str]) -> Judgement:
    """A lambda or a def: read from its source when it is plain and/or/not of did_* calls on earlier
    operations; otherwise known only when none of the operations it reads will change."""
    shown = describe(cond)
    metas = operations_read(cond)
    if not metas:
        return Judgement(None, f"conditional (_if) on {shown}, which reads no earlier operation: known when applied")
    expression = expression_of(cond)
    if expression is not None:
        try:
            holds = evaluate(expression, scope(cond), predicted)
        except Unreadable:
            pass
        else:
            return Judgement(holds, None if holds is not None else _unknown_inputs(metas, predicted, name))
    answers = [predicted(m) for m in metas]
    if all(a is False for a in answers):
        return Judgement(False)  # none of the operations it reads will change: nothing to act on
    changing = [name(m) for m, a in zip(metas, answers, strict=True) if a is not False]
    return Judgement(
        None,
        f"conditional (_if) on {shown}, which opsrun cannot read (only and/or/not of earlier operations' did_change() "
        f"and the like), and {', '.join(changing)} may change: only known when applied",
    )


def _unknown_inputs(metas: list[Any], predicted: Callable[[Any], Prediction], name: Callable[[Any], str]) -> str:
    unknown = [name(m) for m in metas if predicted(m) is None]
    return f"conditional (_if) on {', '.join(unknown)}, whose change is itself unknown: only known when applied"


def kleene_all(answers: list[Prediction]) -> Prediction:
    if False in answers:
        return False
    return None if None in answers else True


def kleene_any(answers: list[Prediction]) -> Prediction:
    if True in answers:
        return True
    return None if None in answers else False


def _pyinfra_helper(cond: Any) -> tuple[str, list[Any]] | None:
    """("any_changed" | "all_changed", the operations) for a condition made by pyinfra's helpers of those
    names (a lambda closing over the operations), else None."""
    kind = getattr(cond, "__qualname__", "").split(".")[0]
    cells: tuple[Any, ...] = getattr(cond, "__closure__", None) or ()
    if kind not in ("any_changed", "all_changed") or len(cells) != 1:
        return None
    metas = cells[0].cell_contents
    if not isinstance(metas, tuple) or not all(is_operation(m) for m in metas):
        return None
    return kind, list(metas)


def scope(fn: Any) -> dict[str, Any]:
    """The names `fn` can see: its closure's cells, then its module's globals."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    names = dict(getattr(fn, "__globals__", {}))
    for var, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            names[var] = cell.cell_contents
        except ValueError:  # an empty cell: the variable was never assigned
            continue
    return names


def operations_read(fn: Any) -> list[Any]:
    """The earlier operations (OperationMeta) that `fn` reads by name, alone or in a list or tuple."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names, found = scope(fn), list[Any]()
    for var in (*code.co_freevars, *code.co_names):
        value = names.get(var)
        values = value if isinstance(value, list | tuple) else [value]
        found += [v for v in values if is_operation(v) and not any(v is f for f in found)]
    return found


def describe(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    expression = expression_of(fn)
    text = f"`{ast.unparse(expression)}`" if expression is not None else getattr(fn, "__qualname__", repr(fn))
    if code is None:
        return text
    where = "/".join(PurePath(code.co_filename).parts[-2:])  # deploys/mongo_replicaset.py
    return f"{text} ({where}:{code.co_firstlineno})"


def expression_of(fn: Any) -> ast.expr | None:
    """The expression a lambda returns, or a `def` whose body is one `return EXPR`, read from its source
    file (pyinfra compiles deploy files from theirs); None when it cannot be told apart or is not one."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    tree = _parsed(code.co_filename)
    if tree is None:
        return None
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno and code.co_name == "<lambda>":
            found.append(node.body)
        elif isinstance(node, ast.FunctionDef) and node.name == code.co_name and node.lineno == code.co_firstlineno:
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
                found.append(body[0].value)
    names = set(code.co_names) | set(code.co_freevars)
    matching = [e for e in found if {n.id for n in ast.walk(e) if isinstance(n, ast.Name)} <= names | {"True", "False"}]
    return matching[0] if len(matching) == 1 else None


@functools.lru_cache(maxsize=64)
def _parsed_text(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def _parsed(filename: str) -> ast.Module | None:
    lines = linecache.getlines(filename)
    return _parsed_text("".join(lines)) if lines else None


def evaluate(node: ast.expr, names: dict[str, Any], predicted: Callable[[Any], Prediction]) -> Prediction:
    """`node` (and/or/not of did_* calls on operations named in `names`, or True/False) in three values;
    Unreadable for anything else."""
    if isinstance(node, ast.BoolOp):
        answers = [evaluate(v, names, predicted) for v in node.values]
        return kleene_all(answers) if isinstance(node.op, ast.And) else kleene_any(answers)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        answer = evaluate(node.operand, names, predicted)
        return None if answer is None else not answer
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    call = node.func if isinstance(node, ast.Call) and not node.args and not node.keywords else None
    if isinstance(call, ast.Attribute) and call.attr in CALLS and isinstance(call.value, ast.Name):
        meta = names.get(call.value.id)
        if is_operation(meta):
            return _call(call.attr, predicted(meta))
    raise Unreadable(ast.unparse(node))
