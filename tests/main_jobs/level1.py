"""Level 1: start the dev server as the README does, transcribe the bundled sample;
then the official clients (openai, huggingface_hub) against it, as the project's CI
`sdks` job runs them."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

from conftest import run, tool

SDK_TESTS = ["tests/test_openai_sdk.py", "tests/test_huggingface_sdk.py"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readme_output(project: Path) -> str:
    """The transcript the README's Run section shows (its first ```text block)."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    run_section = readme.split("## Run\n", 1)[1]
    match = re.search(r"```text\n(.*?)```", run_section, re.DOTALL)
    assert match, "the README's Run section shows no output"
    return match.group(1)


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    package = answers["package_name"]
    cli = str(bin_dir / package.replace("_", "-"))
    port = free_port()
    log_file = project / "devserver.log"
    log_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [cli, "devserver", "--port", str(port), "--log-file", "devserver.log"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env = {
            f"{package.upper()}_API_KEY": "dev",
            f"{package.upper()}_BASE_URL": f"http://127.0.0.1:{port}",
        }
        deadline = time.monotonic() + 20
        while True:  # the server needs a moment to bind
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "dev server did not start"
            time.sleep(0.1)
        # Exactly what the README says the user sees, and nothing on stderr.
        result = run([cli, "transcribe", "samples/hello.wav"], project, env=env)
        assert result.stdout == readme_output(project)
        assert result.stderr == ""
        result = run(
            [cli, "transcribe", "samples/hello.wav", "--json", "--output-dir", "out"],
            project,
            env=env,
        )
        transcription = json.loads(result.stdout)
        assert transcription["text"].strip()
        assert transcription["segments"], transcription
        for segment in transcription["segments"]:
            assert 0 <= segment["start"] < segment["end"]
        written = json.loads((project / "out" / "hello.wav.json").read_text("utf-8"))
        assert written == transcription
        # Subtitles, as the service wrote them: the README's segments, timed.
        srt = ["--provider", "openai", "--response-format", "srt"]
        result = run([cli, "transcribe", "samples/hello.wav", *srt], project, env=env)
        assert result.stdout.startswith("1\n00:00:00,010 --> 00:00:01,580\n"), result.stdout
        # The shared exit codes: bad input is 2 and one line, a refused key 3.
        result = run([cli, "transcribe", "missing.wav"], project, env=env, check=False)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.endswith(": error: no such file: missing.wav\n")
        refused = {**env, f"{package.upper()}_API_KEY": "not-the-key"}
        result = run(
            [cli, "transcribe", "samples/hello.wav", "--quiet"], project, env=refused, check=False
        )
        assert (result.returncode, result.stdout) == (3, "")
        assert result.stderr.count("\n") == 1, result.stderr
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    # The server logged to its file, never into the terminal the demo runs in.
    assert (out, err) == ("", "")
    log = log_file.read_text(encoding="utf-8")
    assert log.startswith(f"dev server on http://127.0.0.1:{port}")
    assert log.count("POST /v1/audio/transcriptions") + log.count("POST /models/") == 4
    check_official_clients(project, bin_dir)


def check_official_clients(project: Path, bin_dir: Path) -> None:
    """The project's tests of the official clients run, none skipped, and pass."""
    python = str(bin_dir / "python")
    run(
        [tool("uv"), "pip", "install", "--quiet", "--python", python, "openai", "huggingface_hub"],
        project,
    )
    result = run(
        [python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *SDK_TESTS], project
    )
    assert "skipped" not in result.stdout, result.stdout
    assert re.search(r"\b\d+ passed", result.stdout), result.stdout
