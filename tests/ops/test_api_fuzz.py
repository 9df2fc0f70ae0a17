"""The OpenAPI document is exact: schemathesis, an outside fuzzer, runs every check it has
(server errors, status codes, content types, response schemas and headers, invalid data rejected,
valid data accepted, undeclared methods answered 405 with `Allow`, auth really required, ...)
over HTTP against the app, with a producer's, a donor's and a partner's token.

Bounded (a fixed seed, a few examples per operation) so that CI runs it in about a minute;
FILMFUND_FUZZ_EXAMPLES and FILMFUND_FUZZ_SEED make a longer or another hunt. Rate limits are
switched off for the run: otherwise POST /api/v1/pledges answers 429 after 30 calls and the
fuzzer never reaches its logic (the limits have their own tests)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from filmfund.extensions import limiter

pytestmark = pytest.mark.one_database  # the HTTP contract's fuzzing, not the database's (tests/conftest.py)

EXAMPLES = os.environ.get("FILMFUND_FUZZ_EXAMPLES", "8")
SEED = os.environ.get("FILMFUND_FUZZ_SEED", "20261201")


@pytest.fixture
def tokens(make_user, token_for, campaign):
    return {role: token_for(make_user(f"{role}@fuzz.example.org", role))["Authorization"]
            for role in ("producer", "donor", "partner")}


@pytest.fixture
def no_rate_limits():
    limiter.enabled = False
    yield
    limiter.enabled = True


def _fuzz(base: str, authorization: str, folder) -> subprocess.Popen:
    folder.mkdir()
    argv = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/v1/openapi.json",
            "--checks", "all", "--mode", "all", "--max-examples", EXAMPLES, "--seed", SEED,
            "--header", f"Authorization: {authorization}", "--generation-database", "none",
            # The document's rule for every string (info.description): UTF-8 text without NUL.
            "--generation-allow-x00", "false", "--generation-codec", "utf-8",
            "--workers", "1", "--no-color", "--request-timeout", "30", "--max-failures", "20",
            "--report-dir", str(folder)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder)


def _failures(output: str) -> str:
    """The FAILURES section of schemathesis's report, each line cut to a readable length."""
    text = output.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0]
    return "\n".join(line if len(line) < 400 else line[:400] + "..." for line in text.splitlines())[-12000:]


def test_schemathesis_finds_no_failure_with_any_role(served_app, tokens, no_rate_limits, tmp_path):
    runs = {role: _fuzz(served_app, authorization, tmp_path / role) for role, authorization in tokens.items()}
    failed = {}
    for role, proc in runs.items():  # the three run side by side
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failed[role] = _failures(out) + err[-2000:]
    assert not failed, "\n\n".join(f"===== {role} token =====\n{out}" for role, out in failed.items())
