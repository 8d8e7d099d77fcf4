"""MkDocs hooks: pages whose content is generated from the code at build time.

A page holds a marker comment that the build replaces:

- ``<!-- generated: cli -->``: every command of the typer app, from click's own
  introspection (usage, help, options with their defaults), so it cannot be hand-copied.
- ``<!-- generated: schema NAME -->``: the JSON Schema of ``edgecls.api.schemas.SCHEMAS[NAME]``
  as a field table and the schema itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

MARKER = re.compile(r"<!-- generated: (cli|schema (\w+)) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return MARKER.sub(lambda m: cli_reference() if m.group(1) == "cli" else schema_page(m.group(2)), markdown)


def cli_reference() -> str:
    """Markdown for every command of ``edgecls``, depth first, in the app's order."""
    import typer

    from edgecls.cli import app

    root = typer.main.get_command(app)
    return "\n".join(_command_markdown(root, ["edgecls"], None))


def _command_markdown(command: Any, path: list[str], parent: Any) -> list[str]:
    """A command's section, then its subcommands' (typer ships its own copy of click, so
    commands are told apart by what they have, not by class)."""
    context = command.context_class(command, info_name=path[-1], parent=parent)
    name = " ".join(path)
    out = [f"{'#' * min(len(path) + 1, 4)} `{name}`", ""]
    if command.help:
        out += [_plain(command.help), ""]
    out += ["```", " ".join(command.collect_usage_pieces(context)).join([f"{name} ", ""]), "```", ""]
    rows = [_param_row(p, context) for p in command.get_params(context) if not getattr(p, "hidden", False)]
    rows = [row for row in rows if row]
    if rows:
        out += ["| argument / option | help |", "|---|---|", *rows, ""]
    if hasattr(command, "list_commands"):
        for sub in command.list_commands(context):
            child = command.get_command(context, sub)
            if child is not None and not child.hidden:
                out += _command_markdown(child, path + [sub], context)
    return out


def _param_row(param: Any, context: Any) -> str | None:
    """One table row from the parameter's own help record (what ``--help`` prints)."""
    record = param.get_help_record(context)
    if param.name == "help" or record is None:
        return None
    name, help_text = record
    return f"| `{name}` | {_cell(_plain(help_text))} |"


def _plain(text: str) -> str:
    """Help text without rich markup and typer's hard line breaks."""
    text = re.sub(r"\[/?(bold|dim|italic|cyan|green|red|yellow)\]", "", text)
    return "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def schema_page(name: str) -> str:
    from edgecls.api.schemas import SCHEMAS

    schema = SCHEMAS[name]()
    rows = ["| key | type | required |", "|---|---|---|"]
    required = set(schema.get("required", []))
    for key, prop in schema["properties"].items():
        rows.append(f"| `{key}` | {_type_name(prop)} | {'yes' if key in required else ''} |")
    return "\n".join([*rows, "", f'??? note "JSON Schema ({schema["title"]})"', "",
                      "    ```json", *("    " + line for line in json.dumps(schema, indent=2).splitlines()),
                      "    ```", ""])


def _type_name(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_type_name(p) for p in prop["anyOf"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " / ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array" and "items" in prop:
        return f"list of {_type_name(prop['items'])}"
    if kind == "array" and "prefixItems" in prop:
        return "[" + ", ".join(_type_name(p) for p in prop["prefixItems"]) + "]"
    if kind == "object" and prop.get("title"):
        return f"object ({prop['title']})"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)
