"""``python -m pytest_goleak.report.merge OUT IN...``: one JSON document from the shards' ``--goleak-json`` files.

A suite split across CI runners (pytest-split, a matrix of shards) writes one
document per runner; main's artifact should be one file, which
``--goleak-compare`` then reads (it also takes the shards' files as they are).
A test in two files keeps the later file's entry; the sessions' sizes and
growth are summed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_goleak.errors import ConfigError
from pytest_goleak.report.compare import merge_documents, read_document

USAGE = "usage: python -m pytest_goleak.report.merge OUT.json IN.json [IN.json ...]"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or any(arg in ("-h", "--help") for arg in args):
        print(USAGE, file=sys.stderr)
        return 2
    out, *inputs = (Path(arg) for arg in args)
    if out in inputs:
        print(f"merge: {out} is both the output and an input; write the merged file elsewhere", file=sys.stderr)
        return 2
    try:
        merged = merge_documents([read_document(path, "merge") for path in inputs])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    print(f"merge: {len(merged['tests'])} tests from {len(inputs)} files into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
