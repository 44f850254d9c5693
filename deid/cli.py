"""The `deid` command. Commands that run no pipeline never import Beam, so they start fast."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from deid import STREAM_THRESHOLD_MB
from deid.spelling import Parser

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-file", metavar="FILE",
                        help="file holding the secret key (default: $DEID_SECRET)")
    parser.add_argument("--throwaway-key", action="store_true",
                        help="use a random key: a trial run whose UIDs and dates can never be "
                             "reproduced")


def _add_profile_option(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--profile", "-p", action="append", required=required,
                        metavar="NAME|FILE",
                        help="a built-in profile or a YAML file; repeat to compose, later wins")


def _profiles_given(args: argparse.Namespace, positional: str) -> list[str]:
    """The profiles of `profile show` and `profile lint`: named as arguments, or with -p."""
    specs = [*getattr(args, positional), *(args.profile or [])]
    if not specs:
        args._spelling_parser.error("name at least one profile (a file or a built-in name)")
    return specs


def _cmd_file(args: argparse.Namespace) -> int:
    from deid.engine import Rejection
    from deid.engine.uids import is_valid_uid
    from deid.keys import resolve_key
    from deid.profile import load_profiles

    profile = load_profiles(args.profile)
    key = resolve_key(args.secret_file, args.throwaway_key)
    output = Path(args.output)
    refusal = _refuse_output(Path(args.input), output, args.force)
    if refusal:
        print(f"deid: {refusal}", file=sys.stderr)
        return EXIT_USAGE
    # In a folder, the output is named once the SOP Instance UID is known.
    temporary = (output / f".deid-{os.getpid()}.partial" if output.is_dir()
                 else output.with_name(output.name + ".partial"))
    try:
        result = _deidentify_file(Path(args.input), temporary, profile, key,
                                  args.stream_threshold_mb << 20)
    except _Unreadable as exc:
        print(f"deid: cannot read {args.input}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Unwritable as exc:
        _discard(temporary)
        print(f"deid: cannot write {output}: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    if isinstance(result, Rejection):
        _discard(temporary)
        print(f"deid: {args.input}: rejected, {result.reason}: {result.message}", file=sys.stderr)
        return EXIT_REJECTED
    if output.is_dir():
        if not is_valid_uid(result.sop_instance_uid):  # a file name inside the folder only
            _discard(temporary)
            print(f"deid: {args.input}: rejected, invalid_uid: SOPInstanceUID (0008,0018) "
                  "cannot name a file", file=sys.stderr)
            return EXIT_REJECTED
        output = output / f"{result.sop_instance_uid}.dcm"
        refusal = _refuse_output(Path(args.input), output, args.force)
        if refusal:
            _discard(temporary)
            print(f"deid: {refusal}", file=sys.stderr)
            return EXIT_USAGE
    try:
        temporary.replace(output)  # atomic: never a truncated output
    except OSError as exc:
        _discard(temporary)
        print(f"deid: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_REJECTED
    print(f"{args.input} -> {output} ({'+'.join(result.profiles)})")
    return EXIT_OK


def _discard(path: Path) -> None:
    """Delete a partial output, if there is one (a path that cannot exist is no error)."""
    with contextlib.suppress(OSError):
        path.unlink()


def _refuse_output(source: Path, output: Path, force: bool) -> str:
    """Why ``output`` may not be written, or '': never over the input, and never over an
    existing file without --force."""
    if output.is_dir():
        return ""
    try:
        same = output.exists() and output.samefile(source)
    except OSError:
        same = False
    if same or output.absolute() == source.absolute():
        return f"{output} is the input: the original is never overwritten; name another output"
    if output.exists() and not force:
        return f"{output} exists: pass --force to overwrite it"
    return ""


class _Unreadable(Exception):
    """The input file cannot be read (the message is the OS's reason)."""


class _Unwritable(Exception):
    """The output file cannot be written (the message is the OS's reason)."""


def _deidentify_file(source: Path, target: Path, profile, key, threshold: int):
    """De-identify ``source`` into ``target``: in memory, or above ``threshold`` bytes
    streamed, without its pixel data in memory. Returns the Output or the Rejection."""
    from deid.engine import Rejection, deidentify_bytes, deidentify_stream
    from deid.engine.files import SinkError

    try:
        size = source.stat().st_size
        reader = source.open("rb")
        data = reader.read() if size <= threshold else None
    except OSError as exc:
        raise _Unreadable(exc.strerror) from None
    try:
        with reader, target.open("wb") as sink:
            if data is None:
                return deidentify_stream(reader, sink, profile, key, size=size, digest=False)
            result = deidentify_bytes(data, profile, key)
            if not isinstance(result, Rejection):
                sink.write(result.data or b"")
            return result
    except SinkError as exc:
        raise _Unwritable(str(exc)) from None
    except OSError as exc:
        raise _Unwritable(exc.strerror) from None


def _cmd_run(argv: list[str]) -> int:
    try:
        from pipelines.deidentify import main as run_pipeline
    except KeyboardInterrupt:  # Ctrl-C while Beam is imported: one line, as during the run
        if os.environ.get("DEID_DEBUG"):
            raise
        print("deid run: interrupted", file=sys.stderr)
        return 130
    return run_pipeline(argv)


VERIFY_DESCRIPTION = """\
Check de-identified files against their originals: conformance to the profiles (what they
remove is absent, what they empty is empty, replaced UIDs changed and valid, no private element
they do not keep), leaks (every identifying value of the original searched for in the output's
text at every depth and in its bytes) and, over the set, consistency (one original UID or
PatientID, one new value). Files or folders, local, gs:// or s3://; with folders, originals are
paired with outputs by the pipeline's manifest and the key ($DEID_SECRET or --secret-file).
Findings name files, tags and checks, never values. Beam filesystem options (--s3_endpoint_url,
...) pass through for buckets. Exit codes: 0 clean, 1 findings, 2 usage, key or profile error."""


def _megabytes(text: str) -> int:
    """A size in MiB, 0 or more (as `deid run --stream_threshold_mb` takes it)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in MiB (0 or more)")
    return value


def verify_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="deid verify", description=VERIFY_DESCRIPTION)
    parser.add_argument("--original", required=True, metavar="PATH",
                        help="the original file, or a folder or bucket prefix of originals")
    parser.add_argument("--deidentified", required=True, metavar="PATH",
                        help="the de-identified file, or the folder (e.g. a pipeline output)")
    _add_profile_option(parser)
    parser.add_argument("--quarantine", metavar="FOLDER",
                        help="the pipeline's quarantine folder (default: <deidentified>"
                             "-quarantine): quarantined originals need no output")
    parser.add_argument("--secret-file", metavar="FILE",
                        help="file holding the key, to pair folders by the replaced SOP "
                             "Instance UID (default: $DEID_SECRET)")
    parser.add_argument("--json", metavar="FILE",
                        help="write the JSON report there ('-': to stdout, instead of the "
                             "summary)")
    return parser


def _cmd_verify(argv: list[str]) -> int:
    from deid.keys import ENV_VAR, resolve_key
    from deid.profile import load_profiles
    from deid.verify.sets import Files, SetVerifier, is_remote

    parser = verify_parser()
    args, beam_options = parser.parse_known_args(argv)
    remote = is_remote(args.original) or is_remote(args.deidentified)
    if beam_options and not remote:
        parser.error_unknown(beam_options)
    profile = load_profiles(args.profile)
    key = resolve_key(args.secret_file) if args.secret_file or os.environ.get(ENV_VAR) else None
    files = Files(beam_options)
    for path in (args.original, args.deidentified):
        if not files.exists(path):
            print(f"deid: no such file or folder: {path}", file=sys.stderr)
            return EXIT_USAGE
    report = SetVerifier(profile, key, files).run(args.original, args.deidentified,
                                                  args.quarantine)
    if args.json:
        text = json.dumps(report.as_json(), indent=2, ensure_ascii=False)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.json != "-":
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_REJECTED


# --- curator tools: read-only, no Beam ---------------------------------------------------------

def _usage_errors(command: Callable[[], int]) -> int:
    """Run a command; a profile that does not load or a key that cannot be had is a usage
    error (exit 2), reported on stderr with the loader's file:line:column problems."""
    from deid.keys import KeyUnavailable
    from deid.profile import ProfileError

    try:
        return command()
    except ProfileError as exc:
        print(f"deid: profile error\n{exc}", file=sys.stderr)
    except KeyUnavailable as exc:
        print(f"deid: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_profile_list(args: argparse.Namespace) -> int:
    from deid.curator.output import dump_json, table
    from deid.curator.show import builtin_profiles

    profiles = builtin_profiles()
    if args.json:
        dump_json({"profiles": [p.as_json() for p in profiles]})
        return EXIT_OK
    table(["NAME", "EDITION", "SECTION", "DESCRIPTION"],
          [[p.name, p.edition, p.section or "-", p.description] for p in profiles],
          wrap_last=True)
    return EXIT_OK


def _cmd_profile_show(args: argparse.Namespace) -> int:
    from deid.curator.output import dump_json, plural, table
    from deid.curator.show import rule_rows, select, settings
    from deid.profile import load_profiles

    profile = load_profiles(_profiles_given(args, "profiles"))
    rows = rule_rows(profile)
    if args.attribute:
        rows, unknown = select(profile, rows, args.attribute)
        if unknown:
            for message in unknown:
                print(f"deid: {message}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        dump_json({**settings(profile), "rules": [r.as_json() for r in rows]})
        return EXIT_OK
    head = settings(profile)
    shift = head["date_shift"]
    print(f"profile: {' + '.join(profile.names)} "
          f"(PS3.15 {'/'.join(head['editions']) or 'custom'})")
    print(f"private: {profile.private}   burned_in: {profile.burned_in}   "
          f"temporal: {profile.temporal}   date_shift: {shift['min_days']}..{shift['max_days']} "
          "days")
    if profile.method_codes:
        print("method codes: " + "; ".join(f"{c.value} {c.meaning}"
                                           for c in profile.method_codes))
    pixels = profile.pixels
    if pixels.rules or pixels.ultrasound_regions != "off" or pixels.ocr != "off":
        print(f"pixels: ultrasound_regions: {pixels.ultrasound_regions}   ocr: {pixels.ocr}   "
              "rules, in the order tried: " + (", ".join(
                  f"{r.name} ({r.source})" for r in pixels.rules) or "none"))
    print()
    table(["TAG", "ELEMENT", "ACTION", "CONDITIONS", "DECIDED BY"], [r.cells for r in rows])
    elements = len({(r.tag, r.element) for r in rows})
    print(f"\n{plural(len(rows), 'rule')} for {plural(elements, 'element')}; where an element "
          "has several, they are tried top to bottom and the first whose conditions hold "
          "applies")
    return EXIT_OK


def _cmd_profile_lint(args: argparse.Namespace) -> int:
    from deid.curator.lint import lint
    from deid.curator.output import dump_json, plural, table
    from deid.profile import builtin_names
    from deid.profile.loader import missing_profile

    args.files = _profiles_given(args, "files")
    builtins = set(builtin_names())
    missing = [f for f in args.files if f not in builtins and not Path(f).is_file()]
    if missing:
        for name in missing:
            message, fix = missing_profile(name)
            print(f"deid: {message}" + (f" ({fix})" if fix else ""), file=sys.stderr)
        return EXIT_USAGE
    groups = [[f] for f in args.files] if args.separately else [list(args.files)]
    findings = [finding for group in groups for finding in lint(group)]
    if args.json:
        dump_json({"profiles": list(args.files), "separately": args.separately,
                   "ok": not findings, "problems": [f.as_json() for f in findings]})
    elif findings:
        rows = []
        for finding in findings:
            rows.append([finding.location, finding.kind, finding.message])
            if finding.fix:
                rows.append(["", "", f"fix: {finding.fix}"])
        table(["LOCATION", "KIND", "PROBLEM"], rows)
        print(f"\n{plural(len(findings), 'problem')} in {' + '.join(args.files)}")
    else:
        print(f"{' + '.join(args.files)}: no problems")
    return 1 if findings else EXIT_OK


def _explain_key(args: argparse.Namespace):
    """(key, whether it is a throwaway): --secret-file, else $DEID_SECRET, else a throwaway
    key, since explain writes nothing."""
    from deid.keys import ENV_VAR, resolve_key

    throwaway = not args.secret_file and not os.environ.get(ENV_VAR)
    return resolve_key(args.secret_file, throwaway=True), throwaway


def _cmd_explain(args: argparse.Namespace) -> int:
    from deid.curator.explain import explain
    from deid.curator.output import dump_json, table
    from deid.profile.loader import compose, load_documents

    documents = load_documents(args.profile)
    profile = compose(documents)
    key, throwaway = _explain_key(args)
    try:
        data = Path(args.input).read_bytes()
    except OSError as exc:
        print(f"deid: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    result = explain(data, profile, key, show_values=args.show_values,
                     documents=documents if args.why or args.json else None)
    key_note = (f"key: {key.origin}" + (" (no --secret-file and no $DEID_SECRET; explain writes "
                                        "nothing, but replaced UIDs, hashes and shifted dates "
                                        "differ from a run with your key)" if throwaway else ""))
    rows = result.rows
    if args.changes_only:
        rows = [r for r in rows if r.result != "kept"]
    if args.attribute:
        rows = [r for r in rows if _names_element(r, args.attribute)]
    if args.json:
        dump_json({
            "file": args.input, "profiles": list(profile.names), "key": key.origin,
            "throwaway_key": throwaway, "values_shown": args.show_values,
            "written": result.written,
            "rejection": ({"reason": result.rejection.reason,
                           "message": result.rejection.message} if result.rejection else None),
            "pixels": {"plan": result.pixels, "rules_tried": [
                {"name": rule.name, "source": str(rule.source), "matches": failed is None,
                 "first_mismatch": failed} for rule, failed in result.pixel_rules]},
            "counts": result.counts(), "elements": [r.as_json() for r in rows]})
        return EXIT_OK if result.written else EXIT_REJECTED
    print(f"explain {args.input} with {' + '.join(profile.names)}")
    print(key_note)
    if not args.show_values:
        print("values: masked (lengths only); --show-values shows them")
    if result.rejection is not None:
        print(f"result: REJECTED, {result.rejection.reason}: {result.rejection.message}")
        print("        nothing would be written for this instance")
    else:
        counts = ", ".join(f"{n} {what}" for what, n in result.counts().items())
        print(f"result: written ({counts})")
    print(f"pixels: {result.pixels}")
    for rule, failed in result.pixel_rules:
        print(f"  pixel rule {rule.name!r} ({rule.source}): "
              + ("matches" if failed is None else f"{failed} does not match"))
    if not result.aligned:
        print("note: elements could not be matched to their items; paths have no item index")
    if rows:
        print()
        buffer = io.StringIO()
        table(["TAG", "ELEMENT", "VR", "ACTION", "RESULT", "DECIDED BY", "VALUE"],
              [[tag_text(r.tag), r.shown_name, r.vr, r.action,
                r.result, r.decided_by, _value_cell(r)] for r in rows], out=buffer)
        lines = buffer.getvalue().splitlines()
        print(lines[0])
        for row, line in zip(rows, lines[1:], strict=True):
            print(line)
            for reason in row.why:
                print(f"    why: {reason}")
    return EXIT_OK if result.written else EXIT_REJECTED


def _names_element(row, wanted: list[str]) -> bool:
    """Whether an explained element is one of those asked for: by keyword (any case), tag in
    any spelling or path."""
    from deid.profile.loader import tag_pattern

    for text in wanted:
        pattern = tag_pattern(text)
        if pattern is not None and row.tag & pattern[0] == pattern[1]:
            return True
        if text.lower() in (row.name.lower(), row.path.lower(),
                            row.path.rsplit(">", 1)[-1].lower()):
            return True
    return False


def _value_cell(row) -> str:
    if row.result in ("kept", "not written") or row.after is None:
        return row.before or ""
    if row.before is None:
        return row.after
    return f"{row.before} -> {row.after}"


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _cmd_diff(args: argparse.Namespace) -> int:
    from deid.curator.diff import diff_datasets, summary
    from deid.curator.explain import shown_name
    from deid.curator.output import dump_json, table
    from deid.engine import read_dataset
    from deid.engine.core import Rejected

    datasets = []
    for name in (args.original, args.deidentified):
        try:
            datasets.append(read_dataset(Path(name).read_bytes()))
        except OSError as exc:
            print(f"deid: cannot read {name}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        except Rejected as exc:
            print(f"deid: {name}: {exc.reason}: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
    changes = diff_datasets(*datasets, show_values=args.show_values, include_same=args.all,
                            include_meta=not args.no_meta)
    counts = summary(changes)
    differ = any(counts[k] for k in ("removed", "changed", "added"))
    if args.json:
        dump_json({"original": args.original, "deidentified": args.deidentified,
                   "values_shown": args.show_values, "counts": counts,
                   "changes": [c.as_json() for c in changes]})
        return 1 if differ else EXIT_OK
    print(f"diff {args.original} {args.deidentified}")
    if not args.show_values:
        print("values: masked (lengths only); --show-values shows them")
    shown = ", ".join(f"{n} {what}" for what, n in counts.items() if n or what != "same")
    print(f"{shown}\n")
    if changes:
        table(["CHANGE", "TAG", "ELEMENT", "VR", "BEFORE", "AFTER"],
              [[c.change, tag_text(c.tag), shown_name(c.path, c.name), c.vr,
                c.before or "", c.after or ""] for c in changes])
    return 1 if differ else EXIT_OK


def _version() -> str:
    """'deid 0.1.0 (PS3.15 2026c)': the package and the edition its profiles come from."""
    from deid import __version__
    from deid.standard import EDITION

    return f"deid {__version__} (PS3.15 {EDITION})"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="deid", description="De-identify DICOM instances with PS3.15 Annex E profiles. "
                                 "Every option takes hyphens or underscores (--secret-file, "
                                 "--secret_file).")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    file_cmd = commands.add_parser("file", help="de-identify one file",
                                   description="De-identify one file. Exit codes: 0 written, "
                                               "1 rejected or not written (reason on "
                                               "stderr), 2 usage or profile error.")
    file_cmd.add_argument("input", help="the DICOM file to de-identify")
    file_cmd.add_argument("output", help="the output file, or a folder for <SOPInstanceUID>.dcm")
    file_cmd.add_argument("--force", action="store_true",
                          help="overwrite an existing output (never the input)")
    file_cmd.add_argument("--stream-threshold-mb", type=_megabytes, default=STREAM_THRESHOLD_MB,
                          metavar="MB",
                          help="stream larger inputs: their pixel data is copied in chunks, "
                               "never held in memory (default: %(default)s)")
    _add_profile_option(file_cmd)
    _add_key_options(file_cmd)
    file_cmd.set_defaults(handler=_cmd_file)

    commands.add_parser("run", help="run the Beam pipeline over folders or buckets "
                                    "(see `deid run --help`)", add_help=False)
    commands.add_parser("verify", help="check de-identified files against their originals "
                                       "(see `deid verify --help`)", add_help=False)

    profile_cmd = commands.add_parser("profile", help="list, show and lint profiles",
                                      description="Curator tools for profiles.")
    profile_sub = profile_cmd.add_subparsers(dest="profile_command", required=True,
                                             metavar="SUBCOMMAND")
    list_cmd = profile_sub.add_parser("list", help="the built-in profiles",
                                      description="The built-in profiles, with the edition of "
                                                  "the Standard they come from.")
    list_cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    list_cmd.set_defaults(handler=_cmd_profile_list)

    show_cmd = profile_sub.add_parser(
        "show", help="the resolved rule table of a composition",
        description="The rules that apply after composing the profiles (later wins): tag, "
                    "element, action, conditions and the file and line that decided it.")
    show_cmd.add_argument("profiles", nargs="*", metavar="NAME|FILE",
                          help="built-in profiles or YAML files, composed in order")
    _add_profile_option(show_cmd, required=False)
    show_cmd.add_argument("--attribute", "-a", action="append", metavar="KEYWORD|TAG|CREATOR",
                          help="show only these elements (repeat for more)")
    show_cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    show_cmd.set_defaults(handler=_cmd_profile_show)

    lint_cmd = profile_sub.add_parser(
        "lint", help="check profiles for mistakes",
        description="Every problem with file:line:column and a fix: schema errors, unknown "
                    "keywords, actions the VR does not allow, shadowed rules, options that "
                    "disagree, 'when' values that never match, bad lookup files. The files are "
                    "checked as they would be composed (--profile A --profile B), unless "
                    "--separately. Exit codes: 0 no problems, 1 problems, 2 usage.")
    lint_cmd.add_argument("files", nargs="*", metavar="FILE|NAME",
                          help="profile files (or built-in names)")
    _add_profile_option(lint_cmd, required=False)
    lint_cmd.add_argument("--separately", action="store_true",
                          help="check each file on its own rather than their composition")
    lint_cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    lint_cmd.set_defaults(handler=_cmd_profile_lint)

    explain_cmd = commands.add_parser(
        "explain", help="what a profile does to every element of one instance",
        description="De-identify one instance in memory and show, for every element at every "
                    "depth, the action, the rule (file:line) that decided it and the result. "
                    "Writes nothing. Values are masked unless --show-values. Key: --secret-file, "
                    "else $DEID_SECRET, else a throwaway key. Exit codes: 0 would be written, "
                    "1 rejected, 2 usage or profile error.")
    explain_cmd.add_argument("input", help="the DICOM file")
    _add_profile_option(explain_cmd)
    explain_cmd.add_argument("--secret-file", metavar="FILE",
                             help="file holding the secret key (default: $DEID_SECRET, else a "
                                  "throwaway key)")
    explain_cmd.add_argument("--show-values", action="store_true",
                             help="show original and new values (do not paste them anywhere "
                                  "public)")
    explain_cmd.add_argument("--changes-only", action="store_true",
                             help="leave out elements kept as they were")
    explain_cmd.add_argument("--why", action="store_true",
                             help="under each element, why: the rule and its profile, the "
                                  "PS3.15 Table E.1-1 row and column, the rules it replaced, "
                                  "the IOD Type behind a compound code, the unlisted policy, "
                                  "conditional rules that did not apply (--json always "
                                  "has them)")
    explain_cmd.add_argument("--attribute", "-a", action="append", metavar="KEYWORD|TAG",
                             help="show only these elements (repeat for more)")
    explain_cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    explain_cmd.set_defaults(handler=_cmd_explain)

    diff_cmd = commands.add_parser(
        "diff", help="what changed between two instances",
        description="Element by element, at every depth: removed, changed and added elements. "
                    "Values are masked unless --show-values. Exit codes: 0 no differences, "
                    "1 differences, 2 usage.")
    diff_cmd.add_argument("original", help="the original DICOM file")
    diff_cmd.add_argument("deidentified", help="the de-identified DICOM file")
    diff_cmd.add_argument("--show-values", action="store_true",
                          help="show the values (do not paste them anywhere public)")
    diff_cmd.add_argument("--all", action="store_true", help="list unchanged elements too")
    diff_cmd.add_argument("--no-meta", action="store_true",
                          help="leave out the File Meta Information (group 0002)")
    diff_cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    diff_cmd.set_defaults(handler=_cmd_diff)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return _cmd_run(argv[1:])  # Beam parses its own options
    if argv[:1] == ["verify"]:
        return _usage_errors(lambda: _cmd_verify(argv[1:]))  # bucket options go to Beam
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _usage_errors(lambda: args.handler(args))
    except BrokenPipeError:  # e.g. `deid explain ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
