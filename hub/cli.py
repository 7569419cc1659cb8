"""The ``hub`` command.

Exit codes: 0 success; 1 a runtime failure (a :class:`~runtime.errors.HubError` that is not a
configuration problem); 2 a configuration or usage problem; 130 interrupted (Ctrl-C).
Problems are printed one per line on stderr, never with a traceback, except that an
unexpected exception (a bug) shows its traceback when ``HUB_DEBUG=1``; its line names the
exception's type and, when the executor recorded it, the subtask and operator it came from
(``internal error in sink-1 (sinks.jdbc writer): psycopg.errors.AdminShutdown: ...``).
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from hub.config import PipelineSpec, check_record_id_text, load_pipeline
from hub.errors import ConfigErrors
from hub.listing import format_plugins
from hub.registry import KINDS, find, list_plugins, list_sections
from runtime.errors import ConfigError, HubError
from runtime.executor.failure import describe, where

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    try:
        return args.command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigErrors, ConfigError) as exc:
        _print_lines(str(exc))
        return EXIT_CONFIG
    except HubError as exc:
        _print_lines(str(exc), prefix="error: ")
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        # Connectors translate their clients' errors into HubErrors: anything else is a bug.
        # The line names the exception's type and where it happened, for the bug report.
        print(f"internal error {describe(exc)}" if where(exc) else
              f"internal error: {describe(exc)}", file=sys.stderr)
        if os.environ.get("HUB_DEBUG") == "1":
            traceback.print_exc()
        else:
            print("(a bug: please report this line; set HUB_DEBUG=1 to see the traceback)",
                  file=sys.stderr)
        return EXIT_FAILED


def _print_lines(text: str, prefix: str = "") -> None:
    for line in text.splitlines() or [""]:
        print(f"{prefix}{line}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub", description="CDC and data-integration hub: run pipelines from TOML files.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a pipeline file without connecting anywhere")
    p.add_argument("pipeline", metavar="PIPELINE.toml")
    p.set_defaults(command=cmd_validate)

    p = sub.add_parser("plugins", help="list installed sources, sinks and formats, and the "
                                        "pipeline sections, with their options")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="show only this connector or format (e.g. kafka) or section "
                        "(e.g. checkpoint)")
    p.add_argument("--kind", choices=(*KINDS, "section"), help="only this kind")
    p.set_defaults(command=cmd_plugins)

    p = sub.add_parser("run", help="run a pipeline")
    p.add_argument("pipeline", metavar="PIPELINE.toml")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--fresh", action="store_true",
                       help="ignore existing checkpoints and start from scratch")
    start.add_argument("--from-savepoint", metavar="DIR",
                       help="start from this savepoint instead of the latest checkpoint")
    p.add_argument("--keep-output", action="store_true",
                   help="start without a checkpoint even where the sink holds output of an "
                        "earlier run of this pipeline, adding to it (asked for by the run "
                        "when that is the case)")
    p.add_argument("--stop-with-savepoint", nargs="?", const="", default=None,
                   metavar="DIR_OR_NAME",
                   help="take a savepoint when stopping (optionally named or placed in DIR)")
    p.add_argument("--skip-record", action="append", default=[], metavar="ID", type=_record_id,
                   help="send the bad record with this id (printed in its error line) to the "
                        "dead-letter path and go on; repeatable")
    p.add_argument("--no-progress", action="store_true", help="do not print progress lines")
    p.add_argument("--http", metavar="ADDR",
                   help="serve the pipeline's status (/status) and Prometheus metrics "
                        "(/metrics) on HOST:PORT (needs the serve extra)")
    p.set_defaults(command=cmd_run)

    p = sub.add_parser("serve", help="run many pipelines as a service, with a REST API, "
                                      "Prometheus metrics and a web page")
    p.add_argument("--state", required=True, metavar="DIR",
                   help="the service's folder: its pipelines, their targets and (by default) "
                        "their checkpoints; kept across restarts")
    p.add_argument("--listen", default="127.0.0.1:8083", metavar="ADDR",
                   help="HOST:PORT to listen on (default 127.0.0.1:8083; port 0: a free one); "
                        "beyond loopback HUB_TOKEN must be set")
    p.set_defaults(command=cmd_serve)

    p = sub.add_parser("savepoint", help="take a savepoint of a running pipeline")
    p.add_argument("pipeline", metavar="PIPELINE.toml")
    p.add_argument("--name", help="name of the savepoint (default: generated)")
    p.add_argument("--stop", action="store_true",
                   help="stop the pipeline once the savepoint is complete")
    p.set_defaults(command=cmd_savepoint)
    return parser


def _record_id(text: str) -> str:
    try:
        return check_record_id_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _version() -> str:
    try:
        return version("cdc-hub")
    except PackageNotFoundError:
        return "unknown"


def cmd_validate(args: argparse.Namespace) -> int:
    """``hub validate``: prints ``ok: <name>: source <type> -> sink <type>``."""
    spec = load_pipeline(args.pipeline)
    print(f"ok: {spec.name}: source {spec.source_type} -> sink {spec.sink_type}")
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    """``hub plugins [NAME]``: every installed plugin (or those called NAME) and the pipeline
    sections, with their options, wrapped to the terminal's width."""
    if args.name:
        infos = find(args.name, args.kind)
    else:
        infos = [] if args.kind == "section" else list_plugins(args.kind)
        infos += list_sections() if args.kind in (None, "section") else []
    width = shutil.get_terminal_size((100, 24)).columns
    print("\n".join(format_plugins(infos, width)) if infos else "no plugins installed")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """``hub run``: validate, then hand over to the runner.

    ``args.stop_with_savepoint`` is None (no savepoint), ``""`` (a savepoint with a generated
    name) or the name/folder given.
    """
    from hub import runner  # lazily: `validate` and `plugins` need none of the engine

    spec = load_pipeline(args.pipeline)
    if getattr(args, "http", None):
        from hub.service.main import serve_run  # lazily: the serve extra

        return _delegate(functools.partial(runner.run, http=serve_run), spec, args)
    return _delegate(runner.run, spec, args)


def cmd_serve(args: argparse.Namespace) -> int:
    """``hub serve``: the service, until SIGINT/SIGTERM (then every pipeline stops with a
    final checkpoint and starts again with the next ``hub serve``)."""
    from hub.service.main import serve  # lazily: the serve extra

    return serve(args.state, args.listen)


def cmd_savepoint(args: argparse.Namespace) -> int:
    """``hub savepoint``: validate, then ask the runner for a savepoint."""
    from hub import runner

    return _delegate(runner.savepoint, load_pipeline(args.pipeline), args)


def _delegate(fn: Callable[[PipelineSpec, argparse.Namespace], int | None],
              spec: PipelineSpec, args: argparse.Namespace) -> int:
    code = fn(spec, args)
    return EXIT_OK if code is None else int(code)
