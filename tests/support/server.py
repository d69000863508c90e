"""The real ComfyUI server (main.py) as a subprocess, and a small client for /prompt and /history."""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from support import paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PromptFailed(AssertionError):
    pass


class ComfyServer:
    def __init__(self, base: pathlib.Path, port: int | None = None, env: dict | None = None):
        """env: extra environment variables for the server process."""
        self.base = paths.make_base_dir(base)
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "server.log"
        self.proc: subprocess.Popen | None = None
        self.client_id = uuid.uuid4().hex

    def start(self, timeout: float = 180.0) -> None:
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--disable-auto-launch"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=paths.comfyui_dir(), stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get("/object_info/KSampler")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def get(self, route: str):
        with urllib.request.urlopen(self.url + route, timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, route: str, payload: dict):
        req = urllib.request.Request(self.url + route, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = resp.read()
                return json.loads(body) if body else None  # /free answers 200 with no body
        except urllib.error.HTTPError as err:
            raise PromptFailed(f"{route} answered {err.code}: {err.read().decode(errors='replace')}") from err

    def queue(self, prompt: dict) -> str:
        return self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running the prompt:\n{self.log_tail()}")
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s:\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 600.0) -> dict:
        """Queue a prompt and wait; returns the history entry (status_str success or error)."""
        return self.wait(self.queue(prompt), timeout)

    def run_ok(self, prompt: dict, timeout: float = 600.0) -> dict:
        entry = self.run(prompt, timeout)
        if entry["status"]["status_str"] != "success":
            raise PromptFailed(f"prompt failed: {execution_error(entry)}\n{self.log_tail(3000)}")
        return entry


def execution_error(entry: dict) -> dict | None:
    """The execution_error message of a failed history entry, or None."""
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    return None
