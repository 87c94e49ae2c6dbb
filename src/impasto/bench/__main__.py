"""``python -m impasto.bench [perf] ARGS`` runs the speed benchmark (the default, as before);
``python -m impasto.bench protocol ARGS`` the interleaved step-time protocol;
``python -m impasto.bench quality CONTENT STYLE RESULT...`` runs the quality judge."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from impasto.errors import ImpastoError


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "quality":
            from impasto.bench.quality import main as quality_main

            return quality_main(args[1:])
        if args and args[0] == "protocol":
            from impasto.bench.protocol import main as protocol_main

            return protocol_main(args[1:])
        if args and args[0] == "perf":
            args = args[1:]
        from impasto.bench.perf import main as perf_main

        return perf_main(args)
    except ImpastoError as err:
        sys.stderr.write(f"impasto: error: {err}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
