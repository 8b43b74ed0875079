"""The routing rules (edge/rules.py) against the table-driven vectors in rules_vectors.json:
Netlify's documented `_redirects`/`_headers` examples for the supported subset, Troy's own cases,
and files that must be refused with the file, the line and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge.rules import (
    MAX_EXACT_REDIRECTS,
    MAX_PATTERN_RULES,
    Rules,
    RulesError,
    is_navigation,
    parse_config,
    parse_headers,
    parse_redirects,
)

VECTORS = json.loads((Path(__file__).with_name("rules_vectors.json")).read_text())


def _rules(site: dict[str, Any]) -> Rules:
    return Rules.build(
        redirects_text=site.get("_redirects"), headers_text=site.get("_headers"), config_text=site.get("troy.json")
    )


def _file_exists(files: list[str]):
    names = set(files)

    def exists(path: str) -> bool:
        relative = path.lstrip("/")
        if relative == "" or relative.endswith("/"):
            return relative + "index.html" in names
        return relative in names or relative + "/index.html" in names

    return exists


CASES = [
    pytest.param(site, case, id=f"{site['name']}:{case['path']}?{case.get('query', '')}")
    for site in VECTORS["sites"]
    for case in site["cases"]
]


@pytest.mark.parametrize(("site", "case"), CASES)
def test_vector(site: dict[str, Any], case: dict[str, Any]) -> None:
    rules = _rules(site)
    if "expect" in case:
        found = rules.redirect_for(case["path"], case.get("query", ""), file_exists=_file_exists(site["files"]))
        expected = case["expect"]
        if expected is None:
            assert found is None, case.get("note", "")
        else:
            assert found is not None, f"no rule matched {case['path']}"
            assert (found.status, found.location) == (expected["status"], expected["location"])
            assert found.rule  # where the rule was written, for logs and the admin
    if "headers" in case:
        got = [(name.lower(), value) for name, value in rules.headers_for(case["path"])]
        assert got == [(name.lower(), value) for name, value in case["headers"]]


@pytest.mark.parametrize("site", VECTORS["sites"], ids=lambda site: site["name"])
def test_rules_survive_the_manifest(site: dict[str, Any]) -> None:
    """What the deploy stores (JSON in the manifest) is what the edge applies."""
    rules = _rules(site)
    stored = Rules.from_dict(json.loads(json.dumps(rules.to_dict())))
    exists = _file_exists(site["files"])
    for case in site["cases"]:
        assert stored.redirect_for(case["path"], case.get("query", ""), file_exists=exists) == rules.redirect_for(
            case["path"], case.get("query", ""), file_exists=exists
        )
        assert stored.headers_for(case["path"]) == rules.headers_for(case["path"])
    for key, value in site.get("config", {}).items():
        assert getattr(stored, key) == value


PARSERS = {"_redirects": parse_redirects, "_headers": parse_headers, "troy.json": parse_config}


@pytest.mark.parametrize("bad", VECTORS["invalid"], ids=lambda bad: f"{bad['file']}:{bad['text'][:30]!r}")
def test_invalid_rules_are_refused_with_file_line_and_reason(bad: dict[str, Any]) -> None:
    with pytest.raises(RulesError) as refused:
        PARSERS[bad["file"]](bad["text"])
    problems = refused.value.problems
    assert len(problems) == len(bad["problems"])
    for problem, (file, line, words) in zip(problems, bad["problems"], strict=True):
        assert (problem.file, problem.line) == (file, line)
        assert words in problem.message
    assert str(refused.value)  # one readable line for the build's error


def test_every_problem_of_every_file_is_reported_at_once() -> None:
    with pytest.raises(RulesError) as refused:
        Rules.build(redirects_text="/a\n/b /c 299\n", headers_text="/x\n  Via: 1\n", config_text='{"spa": 1}')
    assert [(p.file, p.line) for p in refused.value.problems] == [
        ("_headers", 2),
        ("_redirects", 1),
        ("_redirects", 2),
        ("troy.json", 0),
    ]


def test_limits_fail_the_build_rather_than_drop_rules() -> None:
    exact = "".join(f"/old/{i} /new/{i} 301\n" for i in range(MAX_EXACT_REDIRECTS))
    rules = Rules.build(redirects_text=exact)  # at the limit: every rule kept
    assert len(rules.redirects) == MAX_EXACT_REDIRECTS
    found = rules.redirect_for(f"/old/{MAX_EXACT_REDIRECTS - 1}", "", file_exists=lambda path: False)
    assert found is not None and found.location == f"/new/{MAX_EXACT_REDIRECTS - 1}"
    with pytest.raises(RulesError, match="exact redirects: at most"):
        Rules.build(redirects_text=exact + "/one-more /x\n")
    patterns = "".join(f"/p{i}/* /q{i}/:splat\n" for i in range(MAX_PATTERN_RULES + 1))
    with pytest.raises(RulesError, match="pattern rules: at most"):
        Rules.build(redirects_text=patterns)


def test_thousands_of_rules_keep_file_order() -> None:
    """Exact rules are looked up by path and pattern rules by their first segment, yet the
    earliest rule in the file still wins."""
    text = "/docs/* /manual/:splat 301\n" + "".join(f"/docs/page-{i} /elsewhere/{i} 301\n" for i in range(5000))
    text += "/blog/:slug /posts/:slug 302\n/blog/special /never 301\n"
    rules = Rules.build(redirects_text=text)
    never = lambda path: False  # noqa: E731
    assert rules.redirect_for("/docs/page-10", "", file_exists=never).location == "/manual/page-10"
    assert rules.redirect_for("/blog/special", "", file_exists=never).location == "/posts/special"


def test_targets_must_be_in_the_build() -> None:
    rules = Rules.build(
        redirects_text="/a /present.html 200\n/b /missing.html 404\n/c/* /:splat 200\n/d https://x.example/ 301\n",
        config_text='{"spa": "app.html", "not_found": "404.html"}',
    )
    problems = rules.missing_files({"present.html", "404.html"})
    assert [(p.file, p.line, "missing.html" in p.message or "app.html" in p.message) for p in problems] == [
        ("troy.json", 0, True),
        ("_redirects", 2, True),
    ]


@pytest.mark.parametrize(
    ("headers", "path", "navigation"),
    [
        ({"sec-fetch-mode": "navigate"}, "/settings/profile", True),
        ({"sec-fetch-mode": "cors", "accept": "text/html"}, "/settings/profile", False),
        ({"sec-fetch-mode": "navigate"}, "/assets/app.js", False),
        ({"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, "/deep/link", True),
        ({"accept": "*/*"}, "/deep/link", False),
        ({"accept": "application/json"}, "/api/thing", False),
        ({"accept": "application/json, text/html;q=0.5"}, "/page", False),
        ({}, "/page", False),
        ({"accept": "text/html"}, "/missing/chunk.3f9a1c2b.js", False),
    ],
)
def test_spa_fallback_answers_only_navigations(headers: dict[str, str], path: str, navigation: bool) -> None:
    assert is_navigation(headers, path) is navigation


def test_empty_rules_are_empty() -> None:
    assert Rules.build().empty
    assert Rules.from_dict({}).empty
    assert not Rules.build(redirects_text="/a /b\n").empty
    with pytest.raises(ValueError, match="unsupported rules version"):
        Rules.from_dict({"version": 99})


SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "troy.schema.json").read_text())


def _schema_matters(text: str) -> bool:
    """Refusals the schema must share: valid JSON objects refused for their shape (which header
    names a site may set is CloudFront's rule, checked by Troy, not a schema matter)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if isinstance(data, dict) and isinstance(data.get("basic_auth"), list):
        # A username given twice: a schema cannot say that items differ in one property.
        names = [item.get("username") for item in data["basic_auth"] if isinstance(item, dict)]
        if len(names) != len(set(names)):
            return False
    return isinstance(data, dict) and "headers" not in data


def test_the_published_schema_accepts_what_troy_accepts() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    validator.check_schema(SCHEMA)
    accepted = [site["troy.json"] for site in VECTORS["sites"] if "troy.json" in site]
    assert accepted
    for text in accepted:
        parse_config(text)
        assert not list(validator.iter_errors(json.loads(text)))


@pytest.mark.parametrize(
    "text", [bad["text"] for bad in VECTORS["invalid"] if bad["file"] == "troy.json" and _schema_matters(bad["text"])]
)
def test_the_published_schema_refuses_what_troy_refuses(text: str) -> None:
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(json.loads(text)))
