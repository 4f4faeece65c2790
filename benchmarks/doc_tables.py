"""Copy generated tables into the docs, or check that the copies there are current.

A doc includes a generated file between two markers::

    <!-- begin: results/lm/lm_tost.md -->
    …the file's text, copied by this tool…
    <!-- end: results/lm/lm_tost.md -->

``python -m benchmarks.doc_tables`` rewrites every such block of ``--docs`` from the file it
names (paths from the repository root); ``--check`` only reports stale blocks (exit 1), and
is what the test runs.
"""

import os
import re
import sys

from simsgd.cli import Parser, UsageError, run

__all__ = ["main", "sync", "DOCS"]

DOCS = ("docs/distributed.md", "docs/scale-model.md", "docs/figures.md")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BLOCK = re.compile(r"(<!-- begin: (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- end: (?P=path) -->)", re.S)


def sync(text, root=ROOT):
    """``text`` with every block replaced by its file's content, and the stale blocks' paths."""
    stale = []

    def fill(match):
        path = os.path.join(root, match["path"])
        try:
            with open(path) as f:
                body = f.read()
        except OSError as err:
            raise UsageError(
                f"a doc includes {match['path']!r}, which cannot be read ({err.strerror})"
            ) from None
        if not body.endswith("\n"):
            body += "\n"
        if body != match["body"]:
            stale.append(match["path"])
        return match[1] + body + match[4]

    return _BLOCK.sub(fill, text), stale


def main(argv=None) -> int:
    parser = Parser(prog="python -m benchmarks.doc_tables", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", nargs="+", default=list(DOCS))
    parser.add_argument("--check", action="store_true", help="report stale blocks (exit 1), change nothing")
    args = parser.parse_args(argv)
    stale_all = []
    for doc in args.docs:
        path = os.path.join(ROOT, doc)
        try:
            with open(path) as f:
                text = f.read()
        except OSError as err:
            raise UsageError(f"argument --docs: cannot read {doc!r} ({err.strerror})") from None
        new, stale = sync(text)
        stale_all += [f"{doc}: {p}" for p in stale]
        if stale and not args.check:
            with open(path, "w") as f:
                f.write(new)
    if args.check and stale_all:
        print("stale: " + "; ".join(stale_all), file=sys.stderr)
        return 1
    print(("updated: " if stale_all else "current: ") + ("; ".join(stale_all) or ", ".join(args.docs)))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, prog="python -m benchmarks.doc_tables"))
