"""``impasto submit CONTENT STYLE [STYLE...]``: queue a job on a running studio (``impasto serve``).

Prints the job id. With ``-o OUT`` it follows the job's progress and saves the result there; the job
runs on the server either way, so closing this command does not stop it (``impasto submit --cancel ID``
does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from impasto.errors import ImpastoError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="impasto submit", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("images", nargs="*", help="the content photo, then one or more style images")
    p.add_argument("--server", default=os.environ.get("IMPASTO_SERVER", "http://127.0.0.1:8000"),
                   help="studio URL (default: $IMPASTO_SERVER or http://127.0.0.1:8000)")
    p.add_argument("--token", default=None, help="the server's token (default: $IMPASTO_TOKEN)")
    p.add_argument("--config", default=None, help="Config fields as a JSON object or a .json file (partial)")
    p.add_argument("--preset", default=None, help="a preset as the base configuration (impasto presets)")
    p.add_argument("--size", type=int, default=None, help="output long side")
    p.add_argument("--steps", type=int, default=None,
                   help="steps at the first scale (each finer scale takes step_ratio of the one before)")
    p.add_argument("-o", "--output", default=None, help="wait for the job and save its result here (PNG)")
    p.add_argument("--cancel", metavar="ID", default=None, help="cancel job ID instead of submitting")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def _config(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if args.config:
        text = args.config
        if not text.lstrip().startswith("{"):
            try:
                text = Path(text).read_text()
            except OSError as e:
                raise ImpastoError(f"cannot read --config {args.config}: {e.strerror}") from None
        try:
            loaded = json.loads(text)
        except ValueError as e:
            raise ImpastoError(f"--config is not valid JSON ({e})") from None
        if not isinstance(loaded, dict):
            raise ImpastoError("--config must be a JSON object of Config fields")
        cfg.update(loaded)
    if args.size is not None:
        cfg["size"] = args.size
    if args.steps is not None:
        cfg["steps"] = args.steps
    return cfg


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    from impasto.studio.client import StudioClient

    with StudioClient(args.server, token=args.token) as client:
        if args.cancel:
            job = client.cancel(args.cancel)
            print(f"{job['id']} {job['state']}")
            return 0
        if len(args.images) < 2:
            raise ImpastoError("give a content image and at least one style image")
        if args.output is not None and Path(args.output).suffix.lower() != ".png":
            raise ImpastoError(f"-o {args.output}: the studio's results are PNG files; name it .png")
        job = client.submit(args.images[0], args.images[1:], config=_config(args), preset=args.preset)
        print(job["id"], flush=True)
        if args.output is None:
            return 0
        final: dict[str, Any] = job
        for event, data in client.events(job["id"]):
            if event == "progress" and not args.quiet and data["step"] % 10 == 0:
                print(f"step {data['step']}/{data['total_steps']} loss {data.get('loss')}", file=sys.stderr)
            if event == "end":
                final = data
        if final.get("state") != "done":
            why = f": {final['error']}" if final.get("error") else ""
            raise ImpastoError(f"job {job['id']} {final.get('state')}{why}")
        out = client.download(job["id"], args.output)
        if not args.quiet:
            print(f"wrote {out}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
