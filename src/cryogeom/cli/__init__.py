"""The ``cryogeom`` command line.

Every module in this package that defines ``add_args(parser)`` and ``main(args)`` is a
subcommand named after the module (underscores become hyphens). The module docstring's first
line is the short help, the rest is the description. Bad input raises
:class:`cryogeom.errors.InputError`; it is printed as one line and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import textwrap

from cryogeom import __version__
from cryogeom.errors import InputError, WriteError


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) with exit status 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _subcommand_modules():
    import cryogeom.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cryogeom.cli.{info.name}")
        if hasattr(module, "add_args") and hasattr(module, "main"):
            yield info.name.replace("_", "-"), module


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="cryogeom",
        description="cryogeom: geometric heterogeneous cryo-EM reconstruction (Cα point clouds, geometry degradation loss).",
    )
    parser.add_argument("--version", action="version", version=f"cryogeom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, module in _subcommand_modules():
        doc = textwrap.dedent(module.__doc__ or "").strip()
        summary, _, rest = doc.partition("\n")
        p = sub.add_parser(
            name,
            help=summary,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_args(p)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_main", None) is None:
        parser.print_help()
        return 2
    try:
        status = args._main(args)
    except InputError as exc:
        print(f"cryogeom {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except WriteError as exc:
        print(f"cryogeom {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"cryogeom {args.command}: error: out of memory (a smaller --box, --batch-size or fewer images at once may fit)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cryogeom {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


def run() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(main())
