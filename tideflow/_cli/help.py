"""How ``--help`` shows options: a flag as a flag, a repeatable option as its item.

typer shows every option's Python type, so a flag reads ``--timeline <bool>`` (as
if it took a value) and a repeatable one ``<list[str]>``. :func:`tidy_help` walks
the built command tree once and gives those options the metavar a reader expects:
none for a flag, ``<str>...`` for an option given once per item. (typer carries its
own copy of click, so the tree is read by its attributes, not by click's classes.)
"""

from __future__ import annotations

from typing import Any


def tidy_help(command: Any) -> Any:
    """Set the help metavars of ``command`` and of every command under it; return it."""
    for param in command.params:
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if param.is_flag:
            param.metavar = ""
        elif param.multiple:
            param.metavar = f"<{_item_type(param)}>..."
    command.get_help_option = _flag_help(command.get_help_option)  # built per context
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    return command


def _flag_help(make: Any) -> Any:
    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return get_help_option


def _item_type(param: Any) -> str:
    bare = getattr(param, "bare_type", None)  # typer's options know their annotation
    label = str(bare()) if callable(bare) else str(param.type.name)
    return label.removeprefix("list[").removesuffix("]")
