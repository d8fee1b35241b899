"""The ``nndl`` command. Thin: it parses arguments and calls the library.

Every failure the user can cause exits with status 1 (2 for usage errors)
and a one-line reason on stderr, never a traceback (``NNDL_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys

from nndl import __version__


class CommandError(Exception):
    """A failure to report in one line, with exit status 1."""


def cmd_gradcheck(args):
    from nndl.checks import format_table, run_toy_checks

    results = run_toy_checks()
    print(format_table(results))
    failed = [r.check for r in results if not r.passed]
    if failed:
        raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
    print(f"all {len(results)} checks passed")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nndl",
        description="The classic two-layer network assignment as a toolkit: train, search, "
        "evaluate and reproduce it on CIFAR-10.",
    )
    parser.add_argument("--version", action="version", version=f"nndl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("gradcheck", help="run the assignment's toy-model and gradient checks",
                       description="Run the assignment's toy-model checks (scores, loss, "
                       "numerical gradients, a 100-iteration training run) and print a table. "
                       "Exits non-zero when any check fails.")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        if os.environ.get("NNDL_DEBUG"):
            raise
        print(f"nndl {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
