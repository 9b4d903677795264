"""Keyframe schedule strings, parsed into a tree and never evaluated with `eval`.

Grammar (deforum's schedule syntax, with a safe arithmetic subset):

    schedule := keyframe ("," keyframe)*
    keyframe := frame ":" "(" expr ")"
    frame    := WHOLE_NUMBER | '"' expr '"'      a quoted frame may use max_f and s
    expr     := term (("+" | "-") term)*
    term     := unary (("*" | "/" | "%") unary)*
    unary    := ("-" | "+") unary | power
    power    := atom ("**" unary)?
    atom     := NUMBER | NAME | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"

NAME is `t` (the frame being rendered), `max_f` (the last frame's number: the frame
count less one, as in deforum), `s` (the seed), `pi` or `e`; FUNCTION is one of sin,
cos, tan, abs, sqrt, exp, log, floor, ceil, min, max. A quoted frame (`"max_f-1":(0)`)
is computed when the frame count is known; where two keyframes then land on one frame,
the later one wins, as in deforum.
A bare number ("0.75", as some UIs save a constant) reads as "0:(0.75)" when allowed.
Between keyframes whose expressions do not use `t`, values are interpolated linearly.

An expression without `t`, `max_f` or `s` is computed when it is parsed, so `1/0` or
`9**9**9` is refused then, with its position, not when a frame needs it. Many
upstreams' own parsers take less than this grammar (a `float()` of each value):
`numbers_only=True` accepts exactly `frame:(number)`, so that a settings file the
schema passes is one the upstream can read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError

VARIABLES = ("t", "max_f", "s")
CONSTANTS = {"pi": math.pi, "e": math.e}
FUNCTIONS: dict[str, tuple[int, int, Callable[..., float]]] = {
    # name: (fewest arguments, most arguments, function)
    "sin": (1, 1, math.sin),
    "cos": (1, 1, math.cos),
    "tan": (1, 1, math.tan),
    "abs": (1, 1, abs),
    "sqrt": (1, 1, math.sqrt),
    "exp": (1, 1, math.exp),
    "log": (1, 1, math.log),
    "floor": (1, 1, math.floor),
    "ceil": (1, 1, math.ceil),
    "min": (2, 8, min),
    "max": (2, 8, max),
}
MAX_LENGTH = 10_000
MAX_DEPTH = 50


class ScheduleError(ConfigError):
    """A schedule string does not follow the grammar, or cannot be evaluated."""


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: Expr


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]


Expr = Num | Var | Neg | BinOp | Call


@dataclass(frozen=True)
class Schedule:
    """Keyframes (frame, expression): whole-number frames sorted and each once, then
    the quoted frame expressions in the order given."""

    keyframes: tuple[tuple[int | Expr, Expr], ...]

    def __str__(self) -> str:
        return format_schedule(self)

    def values(self, frames: int, seed: int = 0) -> list[float]:
        """One value per frame, 0 to frames - 1."""
        return [self.value_at(frame, frames, seed) for frame in range(frames)]

    def resolved(self, frames: int, seed: int = 0) -> list[tuple[int, Expr]]:
        """Keyframes at whole frames, sorted; a later keyframe wins a shared frame."""
        placed: dict[int, Expr] = {}
        for frame, expr in self.keyframes:
            if not isinstance(frame, int):
                frame = int(evaluate(frame, t=0, max_f=frames - 1, s=seed))
            placed[frame] = expr
        return sorted(placed.items(), key=lambda pair: pair[0])

    def value_at(self, frame: int, frames: int, seed: int = 0) -> float:
        keyframes = self.resolved(frames, seed)
        index = max((i for i, (f, _) in enumerate(keyframes) if f <= frame), default=0)
        start, expr = keyframes[index]
        if uses_t(expr) or index + 1 == len(keyframes) or frame < start:
            return evaluate(expr, t=frame, max_f=frames - 1, s=seed)
        end, next_expr = keyframes[index + 1]
        low = evaluate(expr, t=start, max_f=frames - 1, s=seed)
        high = evaluate(next_expr, t=end, max_f=frames - 1, s=seed)
        return low + (high - low) * (frame - start) / (end - start)


_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<quoted>\"[^\"]*\"|'[^']*')"
    r"|(?P<op>\*\*|[-+*/%(),:]))"
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            offset = len(text[position:]) - len(text[position:].lstrip())
            raise ScheduleError(
                f"{_quote(text)}: unexpected {text[position + offset]!r} at character"
                f" {position + offset + 1}"
            )
        kind = match.lastgroup or "op"
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


def _quote(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


class _Parser:
    def __init__(self, text: str, *, numbers_only: bool = False) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0
        self.numbers_only = numbers_only

    def check_value(self, expr: Expr, start: int, end: int) -> None:
        """Refuse what the upstream could not compute, naming where it is."""
        source = self.text[start:end].strip()
        where = f"{_quote(self.text)}: at character {start + 1}, {source!r}"
        if self.numbers_only and not _is_number(expr):
            raise ScheduleError(
                f"{where} is not a plain number: this upstream's schedules take"
                " numbers only, as frame:(number)"
            )
        if not uses_variables(expr):
            try:
                evaluate(expr, t=0, max_f=0)
            except ScheduleError as error:
                reason = str(error).rpartition(": ")[2]
                raise ScheduleError(f"{where} cannot be computed: {reason}") from None

    @property
    def token(self) -> tuple[str, str, int]:
        return self.tokens[self.index]

    def fail(self, expected: str) -> ScheduleError:
        kind, value, position = self.token
        found = "the end" if kind == "end" else repr(value)
        return ScheduleError(
            f"{_quote(self.text)}: expected {expected} at character {position + 1},"
            f" found {found}"
        )

    def take(self, value: str) -> bool:
        if self.token[0] == "op" and self.token[1] == value:
            self.index += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.take(value):
            raise self.fail(repr(value))

    def schedule(self) -> Schedule:
        keyframes: dict[int, Expr] = {}
        computed: list[tuple[int | Expr, Expr]] = []
        while True:
            kind, value, _ = self.token
            frame: int | Expr
            if kind == "quoted" and self.numbers_only:
                raise self.fail("a whole frame number (this upstream takes no other)")
            if kind == "quoted":
                frame = self.frame_expression(value[1:-1])
            elif kind == "number" and value.isdigit():
                frame = int(value)
                if frame in keyframes:
                    raise ScheduleError(
                        f"{_quote(self.text)}: frame {frame} is given twice"
                    )
            else:
                raise self.fail('a frame number or a quoted frame ("max_f-1")')
            self.index += 1
            self.expect(":")
            self.expect("(")
            start = self.token[2]
            expr = self.expr()
            self.check_value(expr, start, self.token[2])
            self.expect(")")
            if isinstance(frame, int):
                keyframes[frame] = expr
            else:
                computed.append((frame, expr))
            if self.token[0] == "end":
                break
            self.expect(",")
        ordered: list[tuple[int | Expr, Expr]] = [
            (frame, keyframes[frame]) for frame in sorted(keyframes)
        ]
        return Schedule(tuple(ordered + computed))

    def frame_expression(self, text: str) -> Expr:
        inner = _Parser(text)
        node = inner.expr()
        if inner.token[0] != "end":
            raise inner.fail("the end of the quoted frame")
        if uses_t(node):
            raise ScheduleError(f"{_quote(self.text)}: a frame cannot depend on t")
        return node

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ScheduleError(
                f"{_quote(self.text)}: nested more than {MAX_DEPTH} deep"
            )
        node = self.term()
        while self.token[0] == "op" and self.token[1] in "+-":
            op = self.token[1]
            self.index += 1
            node = BinOp(op, node, self.term())
        self.depth -= 1
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.token[0] == "op" and self.token[1] in ("*", "/", "%"):
            op = self.token[1]
            self.index += 1
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.take("-"):
            return Neg(self.unary())
        if self.take("+"):
            return self.unary()
        base = self.atom()
        if self.take("**"):
            return BinOp("**", base, self.unary())
        return base

    def atom(self) -> Expr:
        kind, value, _ = self.token
        if kind == "number":
            self.index += 1
            number = float(value)
            if not math.isfinite(number):
                raise ScheduleError(f"{_quote(self.text)}: {value} is too large")
            return Num(number)
        if kind == "name":
            self.index += 1
            if value in FUNCTIONS:
                self.expect("(")
                args = [self.expr()]
                while self.take(","):
                    args.append(self.expr())
                self.expect(")")
                low, high, _ = FUNCTIONS[value]
                if not low <= len(args) <= high:
                    raise ScheduleError(
                        f"{_quote(self.text)}: {value}() takes {low}"
                        f"{'' if low == high else f' to {high}'} argument(s),"
                        f" got {len(args)}"
                    )
                return Call(value, tuple(args))
            if value in VARIABLES or value in CONSTANTS:
                return Var(value)
            known = ", ".join([*VARIABLES, *CONSTANTS, *FUNCTIONS])
            raise ScheduleError(
                f"{_quote(self.text)}: unknown name {value!r} (known: {known})"
            )
        if self.take("("):
            node = self.expr()
            self.expect(")")
            return node
        raise self.fail("a number, a name or '('")


def _is_number(node: Expr) -> bool:
    """A literal number, signed or not: what Python's float() of the text accepts."""
    return isinstance(node, Num) or (
        isinstance(node, Neg) and isinstance(node.operand, Num)
    )


def parse_schedule(
    text: str, *, allow_bare: bool = True, numbers_only: bool = False
) -> Schedule:
    """The schedule a string describes; ScheduleError says where it breaks grammar."""
    if len(text) > MAX_LENGTH:
        raise ScheduleError(f"schedule of {len(text)} characters: at most {MAX_LENGTH}")
    stripped = text.strip()
    if not stripped:
        raise ScheduleError("empty schedule: write keyframes such as '0:(1.0)'")
    if ":" not in stripped:
        if not allow_bare:
            raise ScheduleError(
                f"{_quote(text)}: a bare value, not a schedule: write '0:({stripped})'"
            )
        parser = _Parser(stripped, numbers_only=numbers_only)
        expr = parser.expr()
        if parser.token[0] != "end":
            raise parser.fail("the end")
        parser.check_value(expr, 0, len(stripped))
        return Schedule(((0, expr),))
    return _Parser(text, numbers_only=numbers_only).schedule()


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2, "**": 4}


def _precedence(node: Expr) -> int:
    if isinstance(node, BinOp):
        return _PRECEDENCE[node.op]
    if isinstance(node, Neg):
        return 3
    return 5


def format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_expr(node: Expr) -> str:
    """Canonical text: single spaces around operators, parentheses only where needed."""
    if isinstance(node, Num):
        return format_number(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(format_expr(arg) for arg in node.args)})"
    if isinstance(node, Neg):
        return "-" + _wrap(node.operand, 3)
    if node.op == "**":
        return f"{_wrap(node.left, 5)} ** {_wrap(node.right, 3)}"
    own = _PRECEDENCE[node.op]
    return f"{_wrap(node.left, own)} {node.op} {_wrap(node.right, own + 1)}"


def _wrap(node: Expr, needed: int) -> str:
    text = format_expr(node)
    return text if _precedence(node) >= needed else f"({text})"


def format_frame(frame: int | Expr) -> str:
    return str(frame) if isinstance(frame, int) else f'"{format_expr(frame)}"'


def format_schedule(schedule: Schedule) -> str:
    return ", ".join(
        f"{format_frame(frame)}:({format_expr(expr)})"
        for frame, expr in schedule.keyframes
    )


def uses_variables(node: Expr) -> bool:
    """Whether the expression reads t, max_f or s (so has no value until a frame)."""
    if isinstance(node, Var):
        return node.name in VARIABLES
    if isinstance(node, Neg):
        return uses_variables(node.operand)
    if isinstance(node, BinOp):
        return uses_variables(node.left) or uses_variables(node.right)
    if isinstance(node, Call):
        return any(uses_variables(arg) for arg in node.args)
    return False


def uses_t(node: Expr) -> bool:
    if isinstance(node, Var):
        return node.name == "t"
    if isinstance(node, Neg):
        return uses_t(node.operand)
    if isinstance(node, BinOp):
        return uses_t(node.left) or uses_t(node.right)
    if isinstance(node, Call):
        return any(uses_t(arg) for arg in node.args)
    return False


def evaluate(node: Expr, *, t: float, max_f: float, s: float = 0) -> float:
    """The value of an expression at frame `t`; ScheduleError on math errors."""
    try:
        value = _evaluate(node, {"t": t, "max_f": max_f, "s": s, **CONSTANTS})
    except (ZeroDivisionError, ValueError, OverflowError) as error:
        raise ScheduleError(f"{format_expr(node)!r} at t={t:g}: {error}") from None
    if not math.isfinite(value):
        raise ScheduleError(f"{format_expr(node)!r} at t={t:g}: not a finite number")
    return float(value)


def _evaluate(node: Expr, names: dict[str, float]) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        return names[node.name]
    if isinstance(node, Neg):
        return -_evaluate(node.operand, names)
    if isinstance(node, Call):
        return float(
            FUNCTIONS[node.name][2](*(_evaluate(arg, names) for arg in node.args))
        )
    left, right = _evaluate(node.left, names), _evaluate(node.right, names)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if node.op == "/":
        return left / right
    if node.op == "%":
        return math.fmod(left, right) if right else left / right
    if abs(right) > 1e3:
        raise OverflowError("exponent too large")
    if left < 0 and not right.is_integer():
        raise ValueError("a negative number to a fractional power")
    return float(left**right)
