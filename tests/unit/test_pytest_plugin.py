"""The `mlops` pytest plugin as a user meets it: one option prefix (old names still accepted),
global state set back after the run, and SIGTERM taking the Ctrl-C path through one handler."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import pytest
from testcontainers.core.config import testcontainers_config

from harness.containers.cleanup import reaper_disabled

pytest_plugins = ["pytester"]

REPORT_SETTINGS = """
def test_settings(cluster_settings, pytestconfig):
    (pytestconfig.rootpath / "settings.txt").write_text(f"{cluster_settings.provider} {cluster_settings.keep}")
"""


def _mlops_help_options(help_text: str) -> list[str]:
    """The first spelling of each option in the help's mlops group."""
    section = help_text.split("mlops toolkit: real containers and clusters:", 1)[1]
    section = re.split(r"\n\S", section, maxsplit=1)[0]  # up to the next group's heading
    return re.findall(r"^ {2}(--[\w-]+)", section, flags=re.M)


def test_every_option_of_the_mlops_group_has_the_mlops_prefix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--help", "-p", "no:cacheprovider")
    options = _mlops_help_options(result.stdout.str())
    assert {"--mlops-cluster", "--mlops-keep-cluster", "--mlops-keep-containers"} <= set(options)
    assert [o for o in options if not o.startswith("--mlops-")] == []


@pytest.mark.parametrize(("args", "expected"), [
    (["--mlops-cluster=existing", "--mlops-keep-cluster"], "existing True"),
    (["--cluster=existing", "--keep-cluster"], "existing True"),   # the old names, for .ci and docs
    ([], "kwok False"),
])
def test_the_old_option_names_mean_what_the_new_ones_do(args: list[str], expected: str, pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_CLUSTER", raising=False)
    monkeypatch.delenv("MLOPS_KEEP_CLUSTER", raising=False)
    pytester.makepyfile(REPORT_SETTINGS)
    pytester.runpytest_inprocess(*args, "-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (pytester.path / "settings.txt").read_text() == expected


def test_the_reaper_setting_is_set_back_after_the_run(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", False)
    pytester.makepyfile("""
        from testcontainers.core.config import testcontainers_config

        def test_reaper_off_during_the_run():
            assert testcontainers_config.ryuk_disabled is True
    """)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert testcontainers_config.ryuk_disabled is False


def test_the_reaper_setting_is_set_back_after_a_failure() -> None:
    before = testcontainers_config.ryuk_disabled
    with pytest.raises(RuntimeError), reaper_disabled():
        assert testcontainers_config.ryuk_disabled is True
        raise RuntimeError("a failing start")
    assert testcontainers_config.ryuk_disabled is before


@pytest.fixture
def sigterm_default() -> Iterator[None]:
    """SIGTERM as a fresh process has it, for an in-process run; this run's handler back afterwards."""
    outer = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, outer)


REPORT_HANDLER = """
import signal

def test_handler(pytestconfig):
    handler = signal.getsignal(signal.SIGTERM)
    seen = getattr(handler, "__qualname__", repr(handler))
    try:
        if callable(handler):
            handler(signal.SIGTERM, None)
    except KeyboardInterrupt:
        seen = "KeyboardInterrupt"
    (pytestconfig.rootpath / "handler.txt").write_text(seen)
"""


def test_one_sigterm_handler_during_the_run_and_none_after(sigterm_default: None, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(REPORT_HANDLER)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (pytester.path / "handler.txt").read_text() == "KeyboardInterrupt"  # the Ctrl-C path
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_sigterm_handler_installed_before_the_run_is_left_alone(sigterm_default: None,
                                                                   pytester: pytest.Pytester) -> None:
    def theirs(signum: int, frame: object) -> None: ...

    signal.signal(signal.SIGTERM, theirs)
    pytester.makepyfile(REPORT_HANDLER)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (pytester.path / "handler.txt").read_text().endswith("theirs")
    assert signal.getsignal(signal.SIGTERM) is theirs


def test_sigterm_tears_the_session_fixtures_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import signal
        import pytest

        @pytest.fixture(scope="session")
        def resource(pytestconfig):
            yield
            (pytestconfig.rootpath / "torn-down").write_text("yes")

        def test_terminated(resource):
            signal.raise_signal(signal.SIGTERM)
            pytest.fail("SIGTERM did not interrupt the run")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # a fresh process: SIGTERM at its default
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    assert (pytester.path / "torn-down").read_text() == "yes"
