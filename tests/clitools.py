"""Running the `driftrec` command in tests: in-process with typer's CliRunner, with the checks
every CLI test makes (a clean exit, or exit code 2 with one `error:` line and no traceback)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from driftrec.cli.main import app


def cli(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """Run the app in-process; any exception other than a clean exit fails the calling test
    unless the caller checks the exit code (an uncaught exception gives exit code 1)."""
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def flat(text: str) -> str:
    """Whitespace collapsed, so rich's line wrapping does not matter to substring checks."""
    return " ".join(text.split())


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def assert_input_error(result: Result, *needles: str) -> str:
    """Exit code 2, one `error:` line on stderr holding every needle, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
