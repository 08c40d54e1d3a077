"""Shared fixtures: a real Mosquitto started on a free port for the MQTT tests (tests of
adapters/ and of the live mirror use it alike)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One Mosquitto with persistence on (the queued messages of persistent sessions
    survive a restart), stoppable and restartable on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "max_queued_messages 0\n"
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], cwd=self.folder)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path):
    if not os.path.exists(MOSQUITTO):
        pytest.skip("mosquitto is not installed (scripts/bootstrap.sh installs it)")
    b = Broker(tmp_path)
    b.start()
    yield b
    if b.proc is not None:
        b.stop()
