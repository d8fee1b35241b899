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


def cmd_data_download(args):
    from nndl.data.download import download_cifar10
    from nndl.data.location import data_root

    folder = download_cifar10(data_root(args.root), url=args.url, md5=args.md5,
                              progress=not args.quiet)
    print(f"CIFAR-10 is in {folder}")


def cmd_data_info(args):
    from nndl.data.info import describe, format_lines

    print(format_lines(describe(args.path)))


def add_data_commands(sub):
    data = sub.add_parser("data", help="download and inspect data sets",
                          description="Download CIFAR-10, or describe a data set on disk.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = data_sub.add_parser(
        "download", help="download CIFAR-10 (md5-checked, resumable)",
        description="Download the official CIFAR-10 python-version tarball, check its md5 "
        "before extracting, and extract it to ROOT/cifar-10-batches-py. An interrupted "
        "download resumes when run again. ROOT defaults to $NNDL_DATA, else the user cache.")
    p.add_argument("dataset", choices=["cifar10"], help="the data set (only cifar10)")
    p.add_argument("--root", help="data root folder (default: $NNDL_DATA, else the user cache)")
    p.add_argument("--url", help="download from this URL instead of the official one "
                   "(also $NNDL_CIFAR10_URL)")
    p.add_argument("--md5", help="expected md5 of the tarball (default: the official one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_data_download)
    p = data_sub.add_parser(
        "info", help="describe a data set: format, splits, shapes, classes, checksums",
        description="Describe what PATH holds: a CIFAR-10 copy (python or binary folder, "
        "tarball, or a data root holding one), an .npz with X and y, or an image folder "
        "(PATH/<class>/*.png|jpg).")
    p.add_argument("path", help="file or folder to describe")
    p.set_defaults(func=cmd_data_info)


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
    add_data_commands(sub)
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
