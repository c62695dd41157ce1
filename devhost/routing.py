"""HTTP route templates with ASP.NET Core `TemplateMatcher` semantics, as the Functions host uses them.

The host maps every HTTP function's route (prefixed with host.json's `routePrefix`) in registration
order, with no precedence sorting: the first route whose template, constraints and method match
wins; a failed constraint or method falls through to the next route, and finally to 404.

Because "first registered wins" silently hides routes in Azure, `find_ambiguities` reports every
pair of routes that can match the same request, and the loader refuses to start on any.

Fidelity notes (where .NET behaviour is approximated):
- `datetime` accepts ISO 8601 and the common invariant-culture forms, not every form
  `DateTime.TryParse` accepts.
- `regex(...)` patterns run on Python's `re` (case-insensitive, unanchored search like
  `Regex.IsMatch`); .NET-only syntax is rejected at load when `re` cannot compile it.
- Optional parameters inside complex segments (`{name}.{ext?}`) are refused at load.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_DECIMAL_MAX = Decimal(2**96 - 1)


class RouteTemplateError(ValueError):
    """A route template the host would refuse to register."""


# --- constraints ---------------------------------------------------------------------------------

_WS = "\t\n\x0b\x0c\r "
_INTEGER_RE = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*", re.ASCII)
_NUMBER_RE = re.compile(r"[\t-\r ]*[+-]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[\t-\r ]*", re.ASCII)
_SPECIAL_DOUBLE_RE = re.compile(r"[\t-\r ]*(?:[+-]?(?:infinity|\u221e)|nan)[\t-\r ]*", re.IGNORECASE)
_ALPHA_RE = re.compile(r"^[a-z]*$", re.IGNORECASE)
_HEX = "[0-9a-fA-F]"
_GUID_D = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_GUID_X = (
    rf"\{{0x{_HEX}{{1,8}},0x{_HEX}{{1,4}},0x{_HEX}{{1,4}},"
    rf"\{{0x{_HEX}{{1,2}}(?:,0x{_HEX}{{1,2}}){{7}}\}}\}}"
)
_GUID_RE = re.compile(rf"{_HEX}{{32}}|{_GUID_D}|\{{{_GUID_D}\}}|\({_GUID_D}\)|{_GUID_X}")
_DATETIME_FORMATS = (
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%H:%M",
    "%H:%M:%S",
)


def _parse_long(value: str) -> int | None:
    if not _INTEGER_RE.fullmatch(value):
        return None
    number = int(value.strip(_WS))
    return number if INT64[0] <= number <= INT64[1] else None


def _is_int_in(bounds: tuple[int, int]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        number = _parse_long(value)
        return number is not None and bounds[0] <= number <= bounds[1]

    return check


def _is_bool(value: str) -> bool:
    return value.strip(_WS + "\x00").lower() in ("true", "false")


def _is_guid(value: str) -> bool:
    return _GUID_RE.fullmatch(value.strip(_WS)) is not None


def _is_double(value: str) -> bool:
    # .NET Core 3.0+: overflow parses to +/-Infinity (TryParse succeeds), and the invariant
    # Infinity/NaN symbols are accepted case-insensitively.
    return _NUMBER_RE.fullmatch(value) is not None or _SPECIAL_DOUBLE_RE.fullmatch(value) is not None


def _is_decimal(value: str) -> bool:
    if not _NUMBER_RE.fullmatch(value):
        return False
    try:
        number = Decimal(value.strip(_WS).replace(",", ""))
    except InvalidOperation:
        return False
    return number.copy_abs() <= _DECIMAL_MAX


def _is_datetime(value: str) -> bool:
    text = value.strip(_WS)
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        return True
    except ValueError:
        pass
    for fmt in _DATETIME_FORMATS:
        try:
            datetime.strptime(text, fmt)
            return True
        except ValueError:
            continue
    return False


def _utf16_len(value: str) -> int:
    """`string.Length` in .NET counts UTF-16 code units."""
    return len(value.encode("utf-16-le")) // 2


def _is_length_in(low: int, high: int | None) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        length = _utf16_len(value)
        return length >= low and (high is None or length <= high)

    return check


# Kinds drive the ambiguity linter: a letters-only value can never satisfy a constraint that needs
# a digit, etc. Anything not listed is assumed to overlap with everything.
_LETTERS = "letters"
_DIGITS = "digits"


@dataclass(frozen=True)
class Constraint:
    """One inline constraint such as `int` or `range(1,5)`."""

    text: str
    check: Callable[[str], bool] = field(compare=False)
    kind: str | None = None
    int_range: tuple[int, int] | None = None
    length_range: tuple[int, int | None] | None = None
    name: str = ""

    def __call__(self, value: str) -> bool:
        return self.check(value)


def _int_args(name: str, args: str | None, count: tuple[int, ...]) -> list[int]:
    parts = [] if args is None else [a.strip() for a in args.split(",")]
    if len(parts) not in count:
        raise RouteTemplateError(f"constraint {name!r} takes {' or '.join(map(str, count))} argument(s)")
    values = []
    for part in parts:
        number = _parse_long(part)
        if number is None:
            raise RouteTemplateError(f"constraint {name!r} has a non-integer argument {part!r}")
        values.append(number)
    return values


def parse_constraint(text: str) -> Constraint:
    """Build the constraint for `text` (e.g. `int`, `min(1)`, `regex(^a$)`); unknown names raise."""
    match = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?", text, re.DOTALL)
    if not match:
        raise RouteTemplateError(f"invalid inline constraint {text!r}")
    name, args = match.group(1).lower(), match.group(2)
    simple: dict[str, tuple[Callable[[str], bool], str | None, tuple[int, int] | None]] = {
        "int": (_is_int_in(INT32), _DIGITS, INT32),
        "long": (_is_int_in(INT64), _DIGITS, INT64),
        "bool": (_is_bool, "bool", None),
        "guid": (_is_guid, "guid", None),
        "alpha": (lambda v: _ALPHA_RE.match(v) is not None, _LETTERS, None),
        "double": (_is_double, "double", None),
        "float": (_is_double, "double", None),
        "decimal": (_is_decimal, _DIGITS, None),
        "datetime": (_is_datetime, _DIGITS, None),
    }
    if name in simple:
        if args is not None:
            raise RouteTemplateError(f"constraint {name!r} takes no arguments")
        check, kind, int_range = simple[name]
        return Constraint(text, check, kind, int_range=int_range, name=name)
    if name in ("min", "max", "range"):
        values = _int_args(name, args, (2,) if name == "range" else (1,))
        bounds = {"min": (values[0], INT64[1]), "max": (INT64[0], values[0])}.get(name) or (values[0], values[1])
        return Constraint(text, _is_int_in(bounds), _DIGITS, int_range=bounds, name=name)
    if name in ("length", "minlength", "maxlength"):
        values = _int_args(name, args, (1, 2) if name == "length" else (1,))
        length: tuple[int, int | None]
        if name == "length":
            length = (values[0], values[-1])
        elif name == "minlength":
            length = (values[0], None)
        else:
            length = (0, values[0])
        return Constraint(text, _is_length_in(*length), length_range=length, name=name)
    if name == "regex":
        if not args:
            raise RouteTemplateError("constraint 'regex' needs a pattern")
        try:
            pattern = re.compile(args, re.IGNORECASE)
        except re.error as exc:
            raise RouteTemplateError(f"invalid regex constraint {args!r}: {exc}") from exc
        return Constraint(text, lambda v: pattern.search(v) is not None, name=name)
    raise RouteTemplateError(f"unknown inline constraint {name!r}")


# --- templates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[Constraint, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(c(value) for c in self.constraints)


Part = Literal | Parameter


@dataclass(frozen=True)
class Segment:
    parts: tuple[Part, ...]
    regex: re.Pattern[str] | None = None  # complex segments only, e.g. `{name}.{ext}`

    @property
    def single(self) -> Part | None:
        return self.parts[0] if len(self.parts) == 1 else None

    @property
    def omittable(self) -> bool:
        """True when a request path may end before this segment."""
        part = self.single
        return isinstance(part, Parameter) and (part.optional or part.default is not None or part.catch_all)


@dataclass(frozen=True)
class RouteTemplate:
    text: str
    segments: tuple[Segment, ...]

    @property
    def catch_all_index(self) -> int | None:
        last = self.segments[-1].single if self.segments else None
        return len(self.segments) - 1 if isinstance(last, Parameter) and last.catch_all else None

    @property
    def min_segments(self) -> int:
        required = [i for i, s in enumerate(self.segments) if not s.omittable]
        return required[-1] + 1 if required else 0

    def match(self, path: Sequence[str]) -> dict[str, str | None] | None:
        """Match decoded path segments; return every route value (None when absent) or None."""
        values: dict[str, str | None] = {}
        for index, segment in enumerate(self.segments):
            part = segment.single
            if isinstance(part, Parameter) and part.catch_all:
                rest = "/".join(path[index:])
                values[part.name] = rest if rest else part.default
                break
            if not _match_segment(segment, path[index] if index < len(path) else "", values):
                return None
        else:
            if len(path) > len(self.segments):
                return None
        return values if self._constraints_hold(values) else None

    def _constraints_hold(self, values: dict[str, str | None]) -> bool:
        for param in self.parameters():
            value = values.get(param.name)
            if value is not None and not param.accepts(value):
                return False
        return True

    def parameters(self) -> Iterable[Parameter]:
        for segment in self.segments:
            yield from (p for p in segment.parts if isinstance(p, Parameter))


def _match_segment(segment: Segment, value: str, values: dict[str, str | None]) -> bool:
    """Match one path segment ('' when the path has ended or the segment is empty)."""
    part = segment.single
    if segment.regex is not None:
        found = segment.regex.fullmatch(value) if value else None
        if found is not None:
            values.update(found.groupdict())
        return found is not None
    if isinstance(part, Literal):
        return bool(value) and value.upper() == part.text.upper()
    assert isinstance(part, Parameter)
    if value:
        values[part.name] = value
        return True
    values[part.name] = part.default
    return part.optional or part.default is not None


def join_route(prefix: str, route: str) -> str:
    """Combine host.json's routePrefix with a function's route as the host does."""
    route = route[2:] if route.startswith("~/") else route.lstrip("/")
    prefix = prefix.strip("/")
    return f"{prefix}/{route}" if prefix and route else prefix or route


def _split_template(text: str) -> list[list[tuple[str, str]]]:
    """Tokenize into segments of ("lit", text) / ("param", inner) parts, honouring {{ and }}."""
    segments: list[list[tuple[str, str]]] = [[]]
    literal: list[str] = []
    i = 0

    def flush() -> None:
        if literal:
            segments[-1].append(("lit", "".join(literal)))
            literal.clear()

    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "}":
            raise RouteTemplateError(f"unmatched '}}' in route template {text!r}")
        elif ch == "{":
            flush()
            inner: list[str] = []
            i += 1
            while True:
                if i >= len(text):
                    raise RouteTemplateError(f"unclosed '{{' in route template {text!r}")
                if text.startswith("}}", i) or text.startswith("{{", i):
                    inner.append(text[i])
                    i += 2
                elif text[i] == "}":
                    i += 1
                    break
                elif text[i] == "{":
                    raise RouteTemplateError(f"unescaped '{{' inside a parameter in {text!r}")
                else:
                    inner.append(text[i])
                    i += 1
            segments[-1].append(("param", "".join(inner)))
        elif ch == "/":
            flush()
            segments.append([])
            i += 1
        elif ch == "?":
            raise RouteTemplateError(f"'?' is only allowed in parameters, in route template {text!r}")
        else:
            literal.append(ch)
            i += 1
    flush()
    return segments


def _parse_parameter(inner: str, template: str) -> Parameter:
    text = inner.strip()
    catch_all = False
    if text.startswith("**"):
        catch_all, text = True, text[2:]
    elif text.startswith("*"):
        catch_all, text = True, text[1:]
    optional = text.endswith("?")
    if optional:
        text = text[:-1]
    name_end = len(text)
    for stop in ":=":
        position = text.find(stop)
        if position != -1:
            name_end = min(name_end, position)
    name, rest = text[:name_end], text[name_end:]
    if not name or any(c in name for c in "{}/?*"):
        raise RouteTemplateError(f"invalid route parameter name {name!r} in {template!r}")
    constraints: list[Constraint] = []
    default: str | None = None
    while rest.startswith(":"):
        rest = rest[1:]
        end = 0
        while end < len(rest) and rest[end] not in ":=(":
            end += 1
        if end < len(rest) and rest[end] == "(":
            # The argument ends at the first ')' followed by the end, ':' or '=' (ASP.NET rule),
            # so a regex may contain parentheses.
            close = end
            while True:
                close = rest.find(")", close + 1)
                if close == -1:
                    raise RouteTemplateError(f"unclosed constraint argument in {template!r}")
                if close + 1 == len(rest) or rest[close + 1] in ":=":
                    break
            end = close + 1
        constraints.append(parse_constraint(rest[:end]))
        rest = rest[end:]
    if rest.startswith("="):
        default = rest[1:]
    elif rest:
        raise RouteTemplateError(f"invalid route parameter {inner!r} in {template!r}")
    if optional and default is not None:
        raise RouteTemplateError(f"an optional parameter cannot have a default value: {inner!r} in {template!r}")
    if catch_all and optional:
        raise RouteTemplateError(f"a catch-all parameter cannot be marked optional: {inner!r} in {template!r}")
    return Parameter(name, tuple(constraints), optional, default, catch_all)


def parse_template(text: str) -> RouteTemplate:
    """Parse a full route template (prefix included); invalid templates raise RouteTemplateError."""
    body = text[2:] if text.startswith("~/") else text.lstrip("/")
    body = body.removesuffix("/")
    raw_segments = _split_template(body) if body else []
    segments: list[Segment] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_segments):
        if not raw:
            raise RouteTemplateError(f"empty segment ('//') in route template {text!r}")
        parts: list[Part] = []
        for kind, value in raw:
            if kind == "lit":
                parts.append(Literal(value))
                continue
            param = _parse_parameter(value, text)
            if param.name.lower() in names:
                raise RouteTemplateError(f"route parameter {param.name!r} appears twice in {text!r}")
            names.add(param.name.lower())
            parts.append(param)
        if any(isinstance(a, Parameter) and isinstance(b, Parameter) for a, b in itertools.pairwise(parts)):
            raise RouteTemplateError(f"a segment cannot contain two consecutive parameters: {text!r}")
        params = [p for p in parts if isinstance(p, Parameter)]
        if any(p.catch_all for p in params) and (len(parts) > 1 or index != len(raw_segments) - 1):
            raise RouteTemplateError(f"a catch-all parameter must be the whole last segment: {text!r}")
        regex = None
        if len(parts) > 1 and params:
            if any(p.optional or p.default is not None for p in params):
                raise RouteTemplateError(f"optional/default parameters in complex segments are unsupported: {text!r}")
            regex = re.compile(
                "".join(f"(?P<{p.name}>.+)" if isinstance(p, Parameter) else re.escape(p.text) for p in parts),
                re.IGNORECASE | re.DOTALL,
            )
        elif len(parts) > 1:
            parts = [Literal("".join(p.text for p in parts if isinstance(p, Literal)))]
        segments.append(Segment(tuple(parts), regex))
    return RouteTemplate(text, tuple(segments))


# --- request paths and the router ----------------------------------------------------------------


def split_path(raw_path: str) -> list[str]:
    """Split a raw (still percent-encoded) path into decoded segments, keeping %2F encoded like Kestrel."""
    path = raw_path.split("?", 1)[0].lstrip("/")
    if not path:
        return []
    segments = path.split("/")
    if segments[-1] == "":
        segments.pop()
    return [unquote(re.sub("%2[fF]", "%252F", s)) for s in segments]


def expand_methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    """Upper-case HTTP methods, GET implying HEAD; None means any method."""
    if methods is None:
        return None
    expanded = {m.upper() for m in methods}
    if not expanded:
        return None
    if "GET" in expanded:
        expanded.add("HEAD")
    return frozenset(expanded)


@dataclass(frozen=True)
class Route:
    name: str
    template: RouteTemplate
    methods: frozenset[str] | None  # already expanded (GET implies HEAD); None = any

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    values: dict[str, str | None]

    @property
    def params(self) -> dict[str, str]:
        """Route values as the host sends them: only the non-null ones."""
        return {k: v for k, v in self.values.items() if v is not None}


class Router:
    """First-match routing in registration order, as the Functions host does."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        """The first route matching `method` and the raw path, or None (the host answers 404)."""
        segments = split_path(raw_path)
        for route in self.routes:
            if not route.allows(method):
                continue
            values = route.template.match(segments)
            if values is not None:
                return RouteMatch(route, values)
        return None


# --- ambiguity linter ----------------------------------------------------------------------------


def _intersect(a: tuple[int, int | None], b: tuple[int, int | None]) -> tuple[int, int | None] | None:
    low = max(a[0], b[0])
    highs = [h for h in (a[1], b[1]) if h is not None]
    high = min(highs) if highs else None
    return None if high is not None and high < low else (low, high)


def constraints_disjoint(constraints: Sequence[Constraint]) -> bool:
    """True only when no value can satisfy every constraint together (conservative)."""
    int_range: tuple[int, int | None] | None = (INT64[0], INT64[1])
    length_range: tuple[int, int | None] | None = (0, None)
    kinds = set()
    for constraint in constraints:
        if constraint.int_range is not None and int_range is not None:
            int_range = _intersect(int_range, constraint.int_range)
        if constraint.length_range is not None and length_range is not None:
            length_range = _intersect(length_range, constraint.length_range)
        if constraint.kind:
            kinds.add(constraint.kind)
    if int_range is None or length_range is None:
        return True
    if _LETTERS in kinds and _DIGITS in kinds:
        return True
    return "bool" in kinds and bool(kinds & {_DIGITS, "guid", "double"})


def _literal_can_match(literal: str, segment: Segment) -> bool:
    candidates = {literal, literal.lower(), literal.upper()}
    part = segment.single
    if segment.regex is not None:
        for candidate in candidates:
            found = segment.regex.fullmatch(candidate)
            if found and all(p.accepts(found.group(p.name)) for p in segment.parts if isinstance(p, Parameter)):
                return True
        return False
    if isinstance(part, Literal):
        return part.text.upper() == literal.upper()
    if isinstance(part, Parameter):
        return any(part.accepts(c) for c in candidates)
    return True


def _segments_overlap(a: Segment | None, b: Segment | None) -> bool:
    if a is None or b is None:  # inside a catch-all: anything
        return True
    part_a, part_b = a.single, b.single
    if isinstance(part_a, Literal):
        return _literal_can_match(part_a.text, b)
    if isinstance(part_b, Literal):
        return _literal_can_match(part_b.text, a)
    if isinstance(part_a, Parameter) and isinstance(part_b, Parameter):
        return not constraints_disjoint(part_a.constraints + part_b.constraints)
    return True  # complex vs parameter/complex: assume they overlap


def _position(template: RouteTemplate, index: int) -> Segment | None:
    catch_all = template.catch_all_index
    if catch_all is not None and index >= catch_all:
        return None
    return template.segments[index]


def _accepts_length(template: RouteTemplate, length: int) -> bool:
    if length < template.min_segments:
        return False
    return template.catch_all_index is not None or length <= len(template.segments)


def templates_overlap(a: RouteTemplate, b: RouteTemplate) -> bool:
    """Whether some path can match both templates (constraints considered conservatively)."""
    longest = max(len(a.segments), len(b.segments)) + 1
    for length in range(longest + 1):
        if not (_accepts_length(a, length) and _accepts_length(b, length)):
            continue
        if all(_segments_overlap(_position(a, i), _position(b, i)) for i in range(length)):
            return True
    return False


def methods_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    return a is None or b is None or bool(a & b)


def find_ambiguities(routes: Sequence[Route]) -> list[tuple[Route, Route]]:
    """Every pair of routes that some request could match both of."""
    return [
        (first, second)
        for i, first in enumerate(routes)
        for second in routes[i + 1 :]
        if methods_overlap(first.methods, second.methods) and templates_overlap(first.template, second.template)
    ]
