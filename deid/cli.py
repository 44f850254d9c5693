"""The `deid` command. Commands that run no pipeline never import Beam, so they start fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-file", metavar="FILE",
                        help="file holding the secret key (default: $DEID_SECRET)")
    parser.add_argument("--throwaway-key", action="store_true",
                        help="use a random key: a trial run whose UIDs and dates can never be "
                             "reproduced")


def _add_profile_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", "-p", action="append", required=True, metavar="NAME|FILE",
                        help="a built-in profile or a YAML file; repeat to compose, later wins")


def _cmd_file(args: argparse.Namespace) -> int:
    from deid.engine import Rejection, deidentify_bytes
    from deid.keys import KeyUnavailable, resolve_key
    from deid.profile import ProfileError, load_profiles

    try:
        profile = load_profiles(args.profile)
        key = resolve_key(args.secret_file, args.throwaway_key)
    except ProfileError as exc:
        print(f"deid: profile error\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyUnavailable as exc:
        print(f"deid: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        data = Path(args.input).read_bytes()
    except OSError as exc:
        print(f"deid: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    result = deidentify_bytes(data, profile, key)
    if isinstance(result, Rejection):
        print(f"deid: {args.input}: rejected, {result.reason}: {result.message}", file=sys.stderr)
        return EXIT_REJECTED
    output = Path(args.output)
    if output.is_dir():
        output = output / f"{result.sop_instance_uid}.dcm"
    temporary = output.with_name(output.name + ".partial")
    try:
        temporary.write_bytes(result.data)
        temporary.replace(output)  # atomic: never a truncated output
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        print(f"deid: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.input} -> {output} ({'+'.join(result.profiles)})")
    return EXIT_OK


def _cmd_run(argv: list[str]) -> int:
    from pipelines.deidentify import main as run_pipeline

    return run_pipeline(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deid", description="De-identify DICOM instances with PS3.15 Annex E profiles.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    file_cmd = commands.add_parser("file", help="de-identify one file",
                                   description="De-identify one file. Exit codes: 0 written, "
                                               "1 rejected (reason on stderr), 2 usage or "
                                               "profile error.")
    file_cmd.add_argument("input", help="the DICOM file to de-identify")
    file_cmd.add_argument("output", help="the output file, or a folder for <SOPInstanceUID>.dcm")
    _add_profile_option(file_cmd)
    _add_key_options(file_cmd)
    file_cmd.set_defaults(handler=_cmd_file)

    commands.add_parser("run", help="run the Beam pipeline over folders or buckets "
                                    "(see `deid run --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return _cmd_run(argv[1:])  # Beam parses its own options
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
