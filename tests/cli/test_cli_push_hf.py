"""``checkpoint push-hf``: everything before the upload for real, the upload to a Hub stand-in.

The Hugging Face Hub cannot be reached from the test machine, so ``LocalHubStandIn`` below is a
small local stand-in for the few Hub endpoints ``HfApi.create_repo``, ``create_branch`` and
``upload_folder`` call (it answers every file as a "regular" upload, so no LFS or Xet
storage is involved). The checkpoint, its download and its weights info come from the real
reference server.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

ADAPTER = {
    "adapter_model.safetensors": bytes(range(256)) * 16,
    "adapter_config.json": b'{"r": 32, "lora_alpha": 32}',
    "checkpoint_complete": b"",
}


class LocalHubStandIn(http.server.ThreadingHTTPServer):
    """A stand-in for the Hub's repo, branch, preupload and commit endpoints; records calls."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.created: list[dict[str, Any]] = []
        self.branches: list[str] = []
        self.commits: list[dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalHubStandIn

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.calls.append(
            ("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        if self.path.split("?")[0] == "/api/whoami-v2":
            if self.headers.get("Authorization") != "Bearer hf_test_token":
                return self._reply(401, {"error": "Invalid credentials in Authorization header"})
            return self._reply(200, {"type": "user", "name": "hf-user", "orgs": []})
        self._reply(404, {"error": f"the stand-in does not serve {self.path}"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        hub = self.server
        hub.calls.append(("POST", self.path, {k.lower(): v for k, v in self.headers.items()}))
        path = self.path.split("?")[0]
        if path == "/api/repos/create":
            asked = json.loads(body)
            hub.created.append(asked)
            # A name without a namespace goes to the token's user, as on the Hub.
            owner = asked.get("organization") or "hf-user"
            return self._reply(200, {"url": f"{hub.endpoint}/{owner}/{asked['name']}"})
        if path == "/api/validate-yaml":
            return self._reply(200, {})
        if match := re.fullmatch(r"/api/models/(.+)/branch/([^/]+)", path):
            hub.branches.append(match[2])
            return self._reply(200, {})
        if match := re.fullmatch(r"/api/models/(.+)/preupload/([^/]+)", path):
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return self._reply(200, {"files": modes})
        if match := re.fullmatch(r"/api/models/(.+)/commit/([^/]+)", path):
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = next(x["value"] for x in lines if x["key"] == "header")
            files = {
                x["value"]["path"]: base64.b64decode(x["value"]["content"])
                for x in lines
                if x["key"] == "file"
            }
            hub.commits.append(
                {"repo": match[1], "revision": match[2], "header": header, "files": files}
            )
            url = f"{hub.endpoint}/{match[1]}/commit/{'a' * 40}"
            return self._reply(200, {"commitUrl": url, "commitOid": "a" * 40})
        self._reply(404, {"error": f"the stand-in does not serve {path}"})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHubStandIn]:
    server = LocalHubStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_push_hf_uploads_the_adapter_with_a_model_card(env: Any, hub: LocalHubStandIn) -> None:
    path = env.server.add_checkpoint(env.run_a, "sampler_weights", "hub", files=ADAPTER)
    result = env.invoke("checkpoint", "push-hf", path, "-r", "alice/my-adapter", json_out=True)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["checkpoint_path"] == path and data["repo_id"] == "alice/my-adapter"
    assert data["public"] is False and data["commit_url"].endswith("a" * 40)

    assert hub.created == [
        {"name": "my-adapter", "organization": "alice", "visibility": "private", "type": "model"}
    ] or (hub.created[0]["name"] == "my-adapter" and hub.created[0].get("private", True))
    (commit,) = hub.commits
    files = commit["files"]
    assert set(files) == {"adapter_model.safetensors", "adapter_config.json", "README.md"}
    assert files["adapter_model.safetensors"] == ADAPTER["adapter_model.safetensors"]
    config = json.loads(files["adapter_config.json"])
    assert config["base_model_name_or_path"] == "Qwen/Qwen3-8B" and config["r"] == 32
    card = files["README.md"].decode()
    assert "base_model: Qwen/Qwen3-8B" in card and f"tinker_path: {path}" in card
    assert "- LoRA rank: 32" in card and "library_name: peft" in card
    # HF_TOKEN went to the Hub, and never the Tinker key.
    for _, _, headers in hub.calls:
        assert headers["authorization"] == "Bearer hf_test_token"
        assert "x-api-key" not in headers


def test_push_hf_default_repo_and_revision(env: Any, hub: LocalHubStandIn) -> None:
    path = env.server.add_checkpoint(env.run_a, "weights", "hub2", files=ADAPTER)
    result = env.invoke("checkpoint", "push-hf", path, "--public", "--no-model-card")
    assert result.exit_code == 0, result.output
    repo = f"hf-user/tinker-Qwen3-8B-{env.run_a}".replace(":", "-")
    assert f"Uploaded {path} to {repo} (weights-hub2)" in result.stdout
    assert hub.branches == ["weights-hub2"]
    (commit,) = hub.commits
    assert commit["revision"] == "weights-hub2" and "README.md" not in commit["files"]


def test_push_hf_refuses_a_checkpoint_without_an_adapter(env: Any, hub: LocalHubStandIn) -> None:
    path = env.server.add_checkpoint(env.run_a, "weights", "full", files={"model.bin": b"x" * 64})
    result = env.invoke("checkpoint", "push-hf", path, "-r", "alice/x")
    assert result.exit_code == 1
    assert "does not hold a PEFT adapter" in result.stderr and "Hint: " in result.stderr
    assert [call[1] for call in hub.calls] == ["/api/whoami-v2"]  # nothing uploaded


def test_push_hf_of_a_missing_checkpoint(env: Any, hub: LocalHubStandIn) -> None:
    result = env.invoke("checkpoint", "push-hf", f"tinker://{env.run_a}/weights/none", "-r", "a/b")
    assert result.exit_code == 1 and "(HTTP 404)" in result.stderr
    assert [call[1] for call in hub.calls] == ["/api/whoami-v2"]


def test_push_hf_without_a_hub_token(
    env: Any, hub: LocalHubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    path = f"tinker://{env.run_a}/weights/0001"
    result = env.invoke("checkpoint", "push-hf", path, "-r", "a/b")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: not logged in to the Hugging Face Hub")
    assert "HF_TOKEN" in result.stderr
