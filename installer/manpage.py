"""Man pages from the commands' own argparse parsers, so ``man agent-desktop`` never disagrees with
``agent-desktop --help``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable


def _escape(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines())


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    return formatter._expand_help(action) if action.help else ""


def _option_term(action: argparse.Action) -> str:
    names = ", ".join(f"\\fB{_escape(name)}\\fR" for name in action.option_strings) or f"\\fI{_escape(action.dest)}\\fR"
    if action.option_strings and action.nargs != 0:
        choices = "{" + ",".join(action.choices) + "}" if action.choices else None
        metavar = action.metavar or choices or action.dest.upper()
        if isinstance(metavar, tuple):
            metavar = " ".join(metavar)
        value = f"\\fI{_escape(str(metavar))}\\fR"
        names += f" [{value}]" if action.nargs == "?" else f" {value}"
    return names


def _options(parser: argparse.ArgumentParser) -> Iterable[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        yield ".TP"
        yield _option_term(action)
        yield _escape(_help(parser, action)) or "\\&"


def manpage(parser: argparse.ArgumentParser, summary: str, version: str, date: str,
            files: Iterable[tuple[str, str]] = (), see_also: Iterable[str] = ()) -> str:
    """The roff source of section 1 page for ``parser`` (its ``prog`` is the command)."""
    prog = parser.prog
    usage = " ".join(parser.format_usage().removeprefix("usage: ").split())  # filled by man, not argparse
    lines = [
        f'.TH {prog.upper()} 1 "{date}" "{prog} {version}" "User Commands"',
        ".SH NAME", f"{_escape(prog)} \\- {_escape(summary)}",
        ".SH SYNOPSIS", _escape(usage),
    ]
    if parser.description:
        lines += [".SH DESCRIPTION", _escape(parser.description)]
    lines += [".SH OPTIONS", *_options(parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines += [".SH COMMANDS"]
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                lines += [f".SS {_escape(name)}", _escape(" ".join(sub.format_usage().removeprefix("usage: ").split()))]
                text = sub.description or helps.get(name)
                if text:
                    lines += [".PP", _escape(text)]
                lines += list(_options(sub))
    if parser.epilog:
        lines += [".SH NOTES", _escape(parser.epilog)]
    files = list(files)
    if files:
        lines += [".SH FILES"]
        for path, what in files:
            lines += [".TP", f"\\fI{_escape(path)}\\fR", _escape(what)]
    if any("--self-test" in action.option_strings for action in parser._actions):
        lines += [".SH EXIT STATUS",
                  "With \\fB\\-\\-self\\-test\\fR: 0 when every required check passed, else 1. "
                  "2 for a usage error."]
    see_also = list(see_also)
    if see_also:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{_escape(name)}\\fR(1)" for name in see_also)]
    return "\n".join(lines) + "\n"
