"""One spelling of options everywhere: `--secret-file` and `--secret_file` alike, and a
suggestion for a mistyped option (as profile names get one).

``Parser`` is an ``argparse.ArgumentParser`` for every `deid` command but `run` (whose options
Beam parses; `deid.beam.options` spells them both ways too). Help shows one spelling; the
other is accepted by rewriting it before parsing. A token is rewritten only when it names one
of the parser's options, so options passed through to Beam (`deid verify --s3_endpoint_url`)
are left as they are.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Sequence

# The namespace attribute naming the innermost parser that parsed the command line (each
# subparser sets it as a default, and a subparser's defaults win), so that an unknown option
# is reported by, and matched against, the subcommand it was given to.
_PARSER = "_spelling_parser"


def canonical(option: str) -> str:
    """'--secret_file' and '--secret-file' -> '--secret-file'."""
    return "--" + option[2:].replace("_", "-") if option.startswith("--") else option


def respell(args: Sequence[str], known: Iterable[str]) -> list[str]:
    """Each token naming one of the ``known`` options in the other spelling, as ``known``
    spells it ('--secret-file=k' -> '--secret_file=k' when only the latter is known); other
    tokens, and everything after '--', as they are."""
    spelled: dict[str, str] = {}
    for option in known:
        spelled.setdefault(canonical(option), option)
    out: list[str] = []
    for token in args:
        if token == "--":
            out.extend(args[len(out):])
            break
        name, equals, value = token.partition("=")
        option = spelled.get(canonical(name)) if name.startswith("--") else None
        out.append(f"{option}{equals}{value}" if option else token)
    return out


def suggest(option: str, known: Iterable[str]) -> str:
    """'did you mean --separately?' for '--seperately', or ''."""
    written = option.split("=", 1)[0]
    name = canonical(written)
    close = difflib.get_close_matches(
        name, list({canonical(k) for k in known if k.startswith("--")}), n=1, cutoff=0.6)
    if not close:
        return ""
    # In the user's own spelling: snake_case for snake_case.
    shown = close[0].replace("-", "_") if "_" in written else close[0]
    return f"did you mean --{shown[2:]}?"


def unknown_message(unknown: Sequence[str], known: Iterable[str]) -> str:
    """'unrecognized arguments: --seperately (did you mean --separately?)'."""
    known = list(known)
    parts = []
    for token in unknown:
        hint = suggest(token, known) if token.startswith("--") else ""
        parts.append(f"{token} ({hint})" if hint else token)
    return f"unrecognized arguments: {' '.join(parts)}"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that takes every long option in snake_case and kebab-case, and
    suggests the closest option for one it does not know."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # '--sec' must not silently mean a key option
        super().__init__(*args, **kwargs)
        self.set_defaults(**{_PARSER: self})

    def option_strings(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings]

    def _options(self) -> list[str]:
        """The options of this parser and of its subcommands."""
        known: list[str] = []
        pending: list[argparse.ArgumentParser] = [self]
        while pending:
            parser = pending.pop()
            for action in parser._actions:
                known.extend(action.option_strings)
                if isinstance(action, argparse._SubParsersAction):
                    pending.extend(action.choices.values())
        return known

    def parse_known_args(self, args=None, namespace=None):
        args = respell(list(sys.argv[1:] if args is None else args), self._options())
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            parser = getattr(parsed, _PARSER, self)
            parser.error(unknown_message(unknown, parser.option_strings()))
        return parsed

    def error_unknown(self, unknown: Sequence[str]) -> None:
        """Exit with a usage error for arguments this parser does not know."""
        self.error(unknown_message(unknown, self.option_strings()))


__all__ = ["Parser", "canonical", "respell", "suggest", "unknown_message"]
