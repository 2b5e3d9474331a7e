"""Without the OpenAI spec, the tests that check responses against it are skipped at collection
(with the reason), never run and counted as passed, then skipped at teardown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_spec_checks_skip_at_collection_when_the_spec_is_absent(tmp_path: Path) -> None:
    missing = tmp_path / "no-such" / "openapi.yaml"
    env = dict(os.environ, SQLTUNE_OPENAPI_SPEC=str(missing))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/server/test_files.py::test_file_errors",  # schema-checked through `client`
         "tests/server/test_http.py::test_missing_or_wrong_key_is_401_with_openai_body",
         "tests/server/test_faults.py::test_fault_spec_parsing"],  # no spec involved: it runs
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "1 passed, 2 skipped" in out, out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED [1] tests/server/")]
    assert [line.split()[2].split(":")[0] for line in skipped] == [
        "tests/server/test_files.py", "tests/server/test_http.py"], out
    assert all(f"needs the OpenAI spec {missing}" in line for line in skipped), out
