"""``tinker-rest model list``: the models the service supports, as the official CLI lists them."""

from __future__ import annotations

import click
from rich.table import Table

from tinker_rest.cli import _output as out
from tinker_rest.cli._context import CommandError, Settings, format_option, pass_settings


def _yes_no(value: object) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else "-"


@click.group("model")
def model_group() -> None:
    """Models: the base models the service can train and sample."""


@model_group.command("list")
@click.argument("substring", required=False)
@format_option
@pass_settings
def model_list(settings: Settings, substring: str | None) -> None:
    """List the models you can use; SUBSTRING keeps those whose name holds it (any case).

    Pass a name from the Model column as a training run's base_model.
    JSON: the official CLI's ``{"models": [{model_name, max_context_length, trainable,
    sampleable}]}``.

    \b
    Examples:
      tinker-rest model list
      tinker-rest model list qwen
    """
    client = settings.client()
    models = client.get_server_capabilities().result().supported_models
    if substring is not None:
        wanted = substring.lower()
        models = [m for m in models if m.model_name and wanted in m.model_name.lower()]
        if not models:
            org = client.whoami().result().org_urn
            raise CommandError(
                f"no model name contains {substring!r} for organization {org}",
                "run `tinker-rest model list` to see every model you can use.",
            )
    if settings.json:
        out.echo_json({"models": [out.to_json(m) for m in models]})
        return
    table = Table(title=out.title("Models", len(models), None), title_justify="left")
    table.add_column("Model", overflow="fold")
    table.add_column("Max context", justify="right")
    table.add_column("Trainable")
    table.add_column("Sampleable")
    for model in models:
        context = model.max_context_length
        table.add_row(
            model.model_name or "-",
            str(context) if isinstance(context, int) else "-",
            _yes_no(model.trainable),
            _yes_no(model.sampleable),
        )
    out.print_table(table)
