"""The CodeBuild tests' fake GitHub and helpers, for the secrets-by-reference tests."""

from tests.pipelines.test_codebuild import github, on_commit  # noqa: F401  (fixtures)
