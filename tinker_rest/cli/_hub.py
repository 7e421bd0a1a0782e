"""``tinker-rest checkpoint push-hf``: upload a checkpoint's LoRA adapter to the Hugging Face Hub.

As the official CLI does it: download the checkpoint, check that it is a PEFT adapter
(``adapter_config.json`` and ``adapter_model.safetensors`` or ``.bin``), write a model card
from ``get_weights_info_by_tinker_path``, and upload the folder with huggingface_hub (the
``hf`` extra), which reads ``HF_TOKEN`` and ``HF_ENDPOINT`` from the environment.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import click

from tinker_rest._errors import NotFoundError
from tinker_rest._paths import TinkerPath
from tinker_rest.cli import _output as out
from tinker_rest.cli._context import (
    TINKER_PATH,
    Settings,
    SettingsError,
    format_option,
    pass_settings,
)
from tinker_rest.types import WeightsInfoResponse

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def _repo_safe(value: str) -> str:
    """A Hub repo or branch name from any text: other characters become ``-``."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]", "-", value))
    return name.strip("-_ .")


def model_card(tinker_path: str, repo_id: str, info: WeightsInfoResponse | None) -> str:
    """The README.md of the uploaded adapter: Hub metadata, usage and where it came from."""
    base_model = info.base_model if info is not None else "unknown"
    tags = ["tinker", "peft", "lora"]
    if info is not None:
        tags.append(f"base_model:adapter:{base_model}")
    lines = ["---", f"base_model: {base_model}", "library_name: peft", "tags:"]
    lines += [f"- {tag}" for tag in tags]
    lines += [
        f"tinker_path: {tinker_path}",
        "---",
        "",
        "# Tinker LoRA Adapter",
        "",
        "This repository contains a LoRA adapter exported from Tinker.",
        "",
        "## Usage",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "",
        f'model = AutoModelForCausalLM.from_pretrained("{base_model}", device_map="auto")',
        f'model = PeftModel.from_pretrained(model, "{repo_id}")',
        "```",
        "",
        "## Source",
        "",
        "```",
        tinker_path,
        "```",
        "",
        "## Details",
        "",
        f"- Base model: {base_model}",
    ]
    if info is not None and info.lora_rank is not None:
        lines.append(f"- LoRA rank: {info.lora_rank}")
    return "\n".join(lines) + "\n"


@click.command("push-hf")
@click.argument("tinker_path", type=TINKER_PATH)
@click.option(
    "-r",
    "--repo",
    "repo_id",
    help="The Hub repo, e.g. you/my-adapter.  [default: <you>/tinker-<base model>-<run id>, "
    "revision <checkpoint>]",
)
@click.option("--public", is_flag=True, help="Create the repo public (default: private).")
@click.option("--revision", help="The branch to upload to.")
@click.option("--commit-message", help="The commit message.")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing.")
@click.option(
    "--allow-pattern", "allow_patterns", multiple=True, help="Upload only matching files."
)
@click.option(
    "--ignore-pattern", "ignore_patterns", multiple=True, help="Do not upload matching files."
)
@click.option("--no-model-card", is_flag=True, help="Do not write a README.md model card.")
@format_option
@pass_settings
def push_hf(
    settings: Settings,
    tinker_path: TinkerPath,
    repo_id: str | None,
    public: bool,
    revision: str | None,
    commit_message: str | None,
    create_pr: bool,
    allow_patterns: tuple[str, ...],
    ignore_patterns: tuple[str, ...],
    no_model_card: bool,
) -> None:
    """Upload a checkpoint's LoRA adapter to the Hugging Face Hub (needs the 'hf' extra).

    Downloads the checkpoint, checks it holds a PEFT adapter, adds a model card and uploads
    it. The Hub token comes from HF_TOKEN (or `hf auth login`); HF_ENDPOINT picks the Hub.

    \b
    Example:
      tinker-rest checkpoint push-hf tinker://sess-7f3a:train:0/sampler_weights/final -r you/x
    """
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError
    except ImportError:
        raise SettingsError(
            "checkpoint push-hf needs huggingface_hub, which is not installed",
            "install the 'hf' extra: pip install 'tinker-rest[hf]'.",
        ) from None
    client = settings.client()
    path = str(tinker_path)
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    try:
        hub_user = str(api.whoami()["name"])
    except (HfHubHTTPError, LocalTokenNotFoundError) as exc:
        raise SettingsError(
            f"not logged in to the Hugging Face Hub ({str(exc).splitlines()[0]})",
            "set HF_TOKEN to a token with write access, or run `hf auth login`.",
        ) from None
    with tempfile.TemporaryDirectory(prefix="tinker-push-hf-") as scratch:
        with out.DownloadDisplay(path) as display:
            folder = client.download_checkpoint(
                path, scratch, progress=display.progress, on_event=display.event
            )
        if not (folder / ADAPTER_CONFIG).is_file() or not any(
            (folder / name).is_file() for name in ADAPTER_WEIGHTS
        ):
            raise SettingsError(
                f"{path} does not hold a PEFT adapter",
                f"push-hf uploads LoRA adapters: {ADAPTER_CONFIG} and "
                f"{' or '.join(ADAPTER_WEIGHTS)}; `checkpoint download` fetches any checkpoint.",
            )
        try:
            info: WeightsInfoResponse | None = client.get_weights_info_by_tinker_path(path).result()
        except NotFoundError:
            info = None
        if repo_id is None:
            base = info.base_model.split("/")[-1] if info is not None else "adapter"
            repo_id = f"{hub_user}/{_repo_safe(f'tinker-{base}-{tinker_path.training_run_id}')}"
            revision = revision or _repo_safe(tinker_path.checkpoint_id.replace("/", "-"))
        _name_base_model(folder / ADAPTER_CONFIG, info)
        if not no_model_card and not (folder / "README.md").exists():
            (folder / "README.md").write_text(model_card(path, repo_id, info), encoding="utf-8")
        try:
            api.create_repo(repo_id=repo_id, private=not public, exist_ok=True)
            if revision is not None:
                api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(
                folder_path=os.fspath(folder),
                repo_id=repo_id,
                revision=revision,
                commit_message=commit_message or f"Upload {path}",
                create_pr=create_pr,
                allow_patterns=list(allow_patterns) or None,
                ignore_patterns=[*ignore_patterns, "checkpoint_complete"],
            )
        except HfHubHTTPError as exc:
            raise SettingsError(
                f"the Hugging Face Hub refused the upload: {str(exc).splitlines()[0]}",
                "check HF_TOKEN (a token with write access) and the repo name.",
            ) from None
    result: dict[str, object] = {"checkpoint_path": path, "repo_id": repo_id}
    if revision is not None:
        result["revision"] = revision
    result["public"] = public
    result["commit_url"] = str(commit.commit_url)  # tinker-rest's addition
    if settings.json:
        out.echo_json(result)
    else:
        click.echo(f"Uploaded {path} to {repo_id}" + (f" ({revision})" if revision else ""))


def _name_base_model(config: Path, info: WeightsInfoResponse | None) -> None:
    """Fill ``base_model_name_or_path`` in the adapter's config when it is missing, as PEFT
    needs it to load the adapter."""
    if info is None:
        return
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and not isinstance(data.get("base_model_name_or_path"), str):
        data["base_model_name_or_path"] = info.base_model
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
