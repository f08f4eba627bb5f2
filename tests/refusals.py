"""How every command refuses bad input, checked the same way in each plugin's tests: the exit code of the
contract (1 the input was read and is invalid, 2 usage), a message that names what is wrong, and never
a traceback."""

from __future__ import annotations

from click.testing import Result


def assert_refused(result: Result, code: int, *needles: str) -> None:
    """Exit `code`, a message on stderr holding each needle, no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in: {result.stderr}"
