"""Route templates with ASP.NET Core TemplateMatcher semantics, and the ambiguity linter."""

from __future__ import annotations

import pytest

from devhost.routing import (
    Route,
    Router,
    RouteTemplateError,
    expand_methods,
    find_ambiguities,
    join_route,
    parse_constraint,
    parse_template,
    split_path,
)


def match(template: str, path: str) -> dict[str, str | None] | None:
    return parse_template(template).match(split_path(path))


def route(name: str, template: str, methods: list[str] | None = None) -> Route:
    return Route(name, parse_template(join_route("api", template)), expand_methods(methods))


@pytest.mark.parametrize(
    ("constraint", "accepted", "rejected"),
    [
        ("int", ["0", "42", "-7", "+7", "2147483647", " 5 "], ["abc", "1.5", "2147483648", "", "1e3", "٣"]),
        ("long", ["9223372036854775807", "-3"], ["9223372036854775808", "x1"]),
        ("bool", ["true", "FALSE", "True"], ["yes", "1", "truee"]),
        (
            "guid",
            [
                "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                "3F2504E04F8911D39A0C0305E82C3301",
                "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
                "(3f2504e0-4f89-11d3-9a0c-0305e82c3301)",
            ],
            ["3f2504e0-4f89-11d3-9a0c", "zzzzzzzz-4f89-11d3-9a0c-0305e82c3301"],
        ),
        ("alpha", ["abc", "ABCdef"], ["abc1", "a-b", "ü"]),
        ("double", ["1.5", "-2", "1e10", "1,000.5", ".5", "NaN", "-Infinity"], ["abc", "1.2.3", "1_000"]),
        ("float", ["3.25"], ["three"]),
        ("decimal", ["1.5", "-0.001", "79228162514264337593543950335"], ["NaN", "Infinity", "1e40", "x"]),
        ("datetime", ["2026-01-31", "2026-01-31T10:30:00", "2026-01-31T10:30:00Z"], ["2026-13-01", "tomorrow"]),
        ("min(10)", ["10", "11"], ["9", "abc"]),
        ("max(10)", ["10", "-5"], ["11"]),
        ("range(1,5)", ["1", "5"], ["0", "6"]),
        ("length(3)", ["abc"], ["ab", "abcd"]),
        ("length(2,3)", ["ab", "abc"], ["a", "abcd"]),
        ("minlength(2)", ["ab", "abcdef"], ["a"]),
        ("maxlength(2)", ["a", "ab"], ["abc"]),
        (r"regex(^\d{{3}}$)".replace("{{", "{").replace("}}", "}"), ["123"], ["1234", "abc"]),
        ("regex(b)", ["abc", "B"], ["xyz"]),  # unanchored and case-insensitive, like Regex.IsMatch
    ],
)
def test_constraint_semantics(constraint: str, accepted: list[str], rejected: list[str]) -> None:
    check = parse_constraint(constraint)
    assert [v for v in accepted if not check(v)] == []
    assert [v for v in rejected if check(v)] == []


def test_length_counts_utf16_code_units() -> None:
    # .NET string.Length: an emoji outside the BMP is two UTF-16 code units.
    assert parse_constraint("length(2)")("\U0001f600")
    assert not parse_constraint("length(1)")("\U0001f600")


def test_regex_constraint_with_escaped_braces_in_template() -> None:
    template = r"ssn/{ssn:regex(^\d{{3}}-\d{{2}}-\d{{4}}$)}"
    assert match(template, "ssn/123-45-6789") == {"ssn": "123-45-6789"}
    assert match(template, "ssn/12-345-6789") is None


def test_literals_are_case_insensitive_and_values_keep_case() -> None:
    assert match("api/Bookings/{id}", "/API/bookings/AbC") == {"id": "AbC"}


def test_optional_default_and_catch_all() -> None:
    assert match("api/items/{id?}", "/api/items") == {"id": None}
    assert match("api/items/{id?}", "/api/items/7") == {"id": "7"}
    assert match("api/page/{n:int=1}", "/api/page") == {"n": "1"}
    assert match("api/page/{n:int=1}", "/api/page/3") == {"n": "3"}
    assert match("api/page/{n:int=1}", "/api/page/x") is None
    assert match("api/files/{*path}", "/api/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert match("api/files/{**path}", "/api/files") == {"path": None}
    assert match("api/files/{*path=index}", "/api/files") == {"path": "index"}
    assert match("api/items/{id}", "/api/items") is None
    assert match("api/items/{id}", "/api/items/1/extra") is None


def test_trailing_slash_and_encoded_slash() -> None:
    assert match("api/items/{id}", "/api/items/5/") == {"id": "5"}
    # Kestrel decodes the path except %2F, which stays encoded inside one segment.
    assert match("api/items/{id}", "/api/items/a%2Fb") == {"id": "a%2Fb"}
    assert match("api/items/{id}", "/api/items/a%20b") == {"id": "a b"}


def test_complex_segment() -> None:
    assert match("api/files/{name}.{ext}", "/api/files/archive.tar.gz") == {"name": "archive.tar", "ext": "gz"}
    assert match("api/files/{name}.{ext:alpha}", "/api/files/report.v2") is None


@pytest.mark.parametrize(
    "template",
    [
        "items/{id",
        "items/id}",
        "items//{id}",
        "items/{id}/{ID}",
        "items/{id:nosuch}",
        "items/{id?=5}",
        "items/{*rest}/tail",
        "items/{*rest?}",
        "items/{a}{b}",
        "items?x",
        "items/{id:regex(()}",
        "items/{id:min(x)}",
        "items/{}",
    ],
)
def test_invalid_templates_are_refused(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        parse_template(join_route("api", template))


def test_router_registration_order_methods_and_fallthrough() -> None:
    router = Router(
        [
            route("get_booking", "bookings/{id:int}", ["GET"]),
            route("update_booking", "bookings/{id:int}", ["PUT"]),
            route("search", "search/{q?}", None),
        ]
    )
    found = router.match("GET", "/api/bookings/42")
    assert found is not None and found.route.name == "get_booking" and found.params == {"id": "42"}
    head = router.match("HEAD", "/api/bookings/42")
    assert head is not None and head.route.name == "get_booking"  # GET implies HEAD
    put = router.match("PUT", "/api/bookings/42")
    assert put is not None and put.route.name == "update_booking"  # method fall-through
    assert router.match("POST", "/api/bookings/42") is None
    assert router.match("GET", "/api/bookings/abc") is None  # failed constraint -> 404
    anything = router.match("DELETE", "/api/search")
    assert anything is not None and anything.params == {}  # null route values are not sent


def test_first_registered_wins_when_overlapping() -> None:
    router = Router([route("by_id", "users/{id}"), route("me", "users/me")])
    found = router.match("GET", "/api/users/me")
    assert found is not None and found.route.name == "by_id"


def test_route_prefix_join() -> None:
    assert join_route("api", "items") == "api/items"
    assert join_route("", "items") == "items"
    assert join_route("/v1/", "/items") == "v1/items"
    assert join_route("api", "") == "api"


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        (("bookings/{id}", ["GET"]), ("bookings/mine", ["GET"]), True),
        (("bookings/{id:int}", ["GET"]), ("bookings/mine", ["GET"]), False),
        (("bookings/{id:int}", ["GET"]), ("bookings/{slug:alpha}", ["GET"]), False),
        (("bookings/{id:int}", ["GET"]), ("bookings/{key:guid}", ["GET"]), True),  # 000...1 is both
        (("bookings/{id:range(1,10)}", ["GET"]), ("bookings/{n:min(11)}", ["GET"]), False),
        (("bookings/{id:int}", ["GET"]), ("bookings/{n:long}", ["GET"]), True),
        (("bookings/{id:length(3)}", ["GET"]), ("bookings/{x:minlength(4)}", ["GET"]), False),
        (("bookings/{id:regex(^a)}", ["GET"]), ("bookings/{x:regex(^b)}", ["GET"]), True),  # unknown: conservative
        (("bookings/{id:int}", ["GET"]), ("bookings/{id:int}", ["POST"]), False),
        (("bookings/{id:int}", ["GET"]), ("bookings/{id:int}", ["HEAD"]), True),
        (("bookings/{id:int}", None), ("bookings/{id:int}", ["DELETE"]), True),
        (("bookings", ["GET"]), ("bookings/{id?}", ["GET"]), True),
        (("bookings/{id}", ["GET"]), ("bookings", ["GET"]), False),
        (("files/{*path}", ["GET"]), ("files/readme", ["GET"]), True),
        (("files/{*path}", ["GET"]), ("files", ["GET"]), True),
        (("files/{*path}", ["GET"]), ("other/{*path}", ["GET"]), False),
        (("a/{x}/c", ["GET"]), ("a/b/{y}", ["GET"]), True),
        (("a/{x}/c", ["GET"]), ("a/b/d", ["GET"]), False),
        (("Users/ME", ["GET"]), ("users/me", ["GET"]), True),
        (("flags/{f:bool}", ["GET"]), ("flags/{n:int}", ["GET"]), False),
        (("flags/{f:alpha}", ["GET"]), ("flags/{n:double}", ["GET"]), True),  # "NaN"
        (("files/{name}.{ext}", ["GET"]), ("files/readme", ["GET"]), False),
        (("files/{name}.{ext}", ["GET"]), ("files/read.me", ["GET"]), True),
    ],
)
def test_ambiguity_table(
    first: tuple[str, list[str] | None], second: tuple[str, list[str] | None], overlap: bool
) -> None:
    routes = [route("first", *first), route("second", *second)]
    assert bool(find_ambiguities(routes)) is overlap
    assert bool(find_ambiguities(routes[::-1])) is overlap
