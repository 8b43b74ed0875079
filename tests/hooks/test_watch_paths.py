"""Watch-path decisions as a table (pipelines/services/watch_paths.py; syntax in docs/github.md)."""

from __future__ import annotations

import pytest

from pipelines.services import watch_paths_check, watch_paths_decide

CASES = [
    # patterns, changed files, build?
    ([], ["anything.txt"], True),
    ([], [], True),
    (["apps/web"], None, True),  # changed files unknown: build
    (["apps/web"], ["apps/web/src/index.js"], True),
    (["apps/web/"], ["apps/web/src/index.js"], True),
    (["apps/web"], ["apps/web"], True),
    (["apps/web"], ["apps/website/index.js"], False),  # a name, not a prefix
    (["apps/web"], ["apps/api/main.py", "README.md"], False),
    (["apps/web", "packages/ui"], ["packages/ui/button.tsx"], True),
    (["apps/*"], ["apps/web/x.js"], True),
    (["apps/*"], ["apps"], False),
    (["*.md"], ["README.md"], True),
    (["*.md"], ["docs/guide.md"], False),  # anchored at the root
    (["**/*.md"], ["docs/guide.md"], True),
    (["**/*.md"], ["README.md"], True),  # ** is zero or more segments
    (["apps/**/package.json"], ["apps/package.json"], True),
    (["apps/**/package.json"], ["apps/web/deep/package.json"], True),
    (["apps/**/package.json"], ["apps/web/package-lock.json"], False),
    (["apps/**"], ["apps/web/x.js"], True),
    (["apps/**"], ["app/x.js"], False),
    (["src/?.js"], ["src/a.js"], True),
    (["src/?.js"], ["src/ab.js"], False),
    (["src/[ab].js"], ["src/b.js"], True),
    (["src/[!ab].js"], ["src/b.js"], False),
    (["src/[!ab].js"], ["src/c.js"], True),
    (["apps/web", "!apps/web/docs"], ["apps/web/docs/a.md"], False),
    (["apps/web", "!apps/web/docs"], ["apps/web/docs/a.md", "apps/web/app.js"], True),
    (["!docs/**"], ["docs/a.md"], False),
    (["!docs/**"], ["docs/a.md", "src/a.js"], True),
    (["apps/web"], [], False),  # known and empty: nothing watched changed
    (["a.b"], ["aXb"], False),  # "." is literal
    (["apps/web"], ["/apps/web/x"], True),  # a leading slash in a file list is tolerated
]


@pytest.mark.parametrize(("patterns", "changed", "build"), CASES)
def test_watch_paths_decide(patterns, changed, build):
    decision = watch_paths_decide(patterns, changed)
    assert decision.build is build
    assert decision.reason


def test_a_skip_names_the_files_and_the_patterns():
    decision = watch_paths_decide(["apps/web"], ["README.md", "a", "b", "c", "d"])
    assert not decision.build
    assert decision.reason == (
        "None of the 5 changed files (README.md, a, b and 2 more) match the watch paths apps/web."
    )
    assert "apps/web/x" in watch_paths_decide(["apps/web"], ["apps/web/x"]).reason


@pytest.mark.parametrize(
    "patterns",
    [
        "apps",
        [""],
        ["  apps"],
        ["/apps"],
        ["apps/../secret"],
        ["./apps"],
        ["a\\b"],
        ["!"],
        [1],
        ["x" * 256],
        ["p"] * 51,
    ],
)
def test_bad_patterns_are_refused(patterns):
    with pytest.raises(ValueError):
        watch_paths_check(patterns)


def test_good_patterns_pass():
    assert watch_paths_check(["apps/web", "!apps/web/docs", "**/*.md", "src/[!a].js"]) == [
        "apps/web",
        "!apps/web/docs",
        "**/*.md",
        "src/[!a].js",
    ]
