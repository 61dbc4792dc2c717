"""Starts the real ``terse`` binary on 127.0.0.1 (ephemeral port) for the SDK tests."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"


def terse_binary() -> pathlib.Path:
    directory = os.environ.get("TERSE_BIN_DIR") or ROOT / "target" / "debug"
    path = pathlib.Path(directory) / "terse"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo build --workspace` first")
    return path


class Server:
    """A running ``terse`` process; ``address`` is ``127.0.0.1:PORT``."""

    def __init__(
        self, listen: str = "127.0.0.1:0", services: str | None = None, extra: list[str] = ()
    ) -> None:
        args = [str(terse_binary()), "--listen", listen, "--metrics-listen", ""]
        if services:
            args += ["--services", services]
        args += list(extra)
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        ready = {}

        def read_ready() -> None:
            ready["line"] = self.process.stdout.readline()

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout=60)
        line = ready.get("line", "")
        if not line.startswith("terse ready "):
            self.stop()
            raise RuntimeError(f"terse did not start: {line!r}\n{''.join(self._stderr)}")
        fields = dict(part.split("=", 1) for part in line.split()[2:])
        self.address = fields["grpc"]

    def _drain(self) -> None:
        for line in self.process.stderr:
            self._stderr.append(line)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def server():
    running = Server()
    yield running
    running.stop()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
