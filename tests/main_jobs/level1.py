"""Level 1: start the dev server, transcribe the bundled sample through the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from conftest import run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    package = answers["package_name"]
    cli = str(bin_dir / package.replace("_", "-"))
    port = free_port()
    server = subprocess.Popen(
        [cli, "devserver", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
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
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "dev server did not start"
            time.sleep(0.1)
        result = run([cli, "transcribe", "samples/hello.wav", "--json"], project, env=env)
        transcription = json.loads(result.stdout)
        assert transcription["text"].strip()
        assert transcription["segments"], transcription
        for segment in transcription["segments"]:
            assert 0 <= segment["start"] < segment["end"]
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
