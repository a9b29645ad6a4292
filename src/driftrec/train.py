"""``python -m driftrec.train``: `driftrec train` as a module, for torch's launcher.

    torchrun --nproc_per_node=2 -m driftrec.train DATA -m sasrec -o MODEL_DIR

Each process torchrun starts joins the process group it describes in the environment and trains
its share of every batch (`driftrec.distributed`); rank 0 prints, validates and saves the model
directory. Started without torchrun it is plain `driftrec train` (which launches the processes
itself with ``--nproc N``). The arguments are `driftrec train`'s.
"""

from __future__ import annotations

import sys

from driftrec import distributed
from driftrec.cli.main import main as cli_main


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    distributed.init_from_env()
    finished = False
    try:
        cli_main(args, prog_name="python -m driftrec.train", command="train")
        finished = True
    except SystemExit as exit_:
        finished = not exit_.code
        raise
    finally:
        distributed.finish(wait=finished)


if __name__ == "__main__":
    main()
