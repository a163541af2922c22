"""The `skyrack` command line: the only place that formats for humans.

Every command takes --json, and on failure exits non-zero with a one-line reason. One
module per group of verbs: flying (sim, fly, campaign), bench (image, board, flash),
operate (ground), dictionary; what they share is in options.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence

from hal.errors import SkyrackError
from skyrack.cli import bench, dictionary, flying, operate
from skyrack.cli.options import JSON_SCHEMA, CliError, Parser

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> Parser:
    parser = Parser(prog="skyrack", description="Flight software for compute satellites.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verbs in (flying, bench, operate, dictionary):
        verbs.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`skyrack ground watch | head`): not a failure of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C where a command did not catch it: no traceback
        print(f"skyrack {args.command}: interrupted", file=sys.stderr)
        return 130
    except (SkyrackError, OSError) as e:  # every error of ours derives from SkyrackError
        reason = " ".join(str(e).split())
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": reason, "schema": JSON_SCHEMA}))
        print(f"skyrack {args.command}: error: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
