"""``python -m driftrec.train``: `driftrec train` as a module, for torch's launcher.

    torchrun --nproc_per_node=2 -m driftrec.train DATA -m sasrec -o MODEL_DIR

Each process torchrun starts joins the process group it describes in the environment and trains
its share of every batch (`driftrec.distributed`); rank 0 prints, validates and saves the model
directory. Started without torchrun it is plain `driftrec train` (which launches the processes
itself with ``--nproc N``). The arguments are `driftrec train`'s.
"""

from __future__ import annotations

import sys
import traceback

from driftrec import distributed
from driftrec.cli.main import main as cli_main


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not distributed.init_from_env():  # not under torchrun: plain `driftrec train`
        cli_main(args, prog_name="python -m driftrec.train", command="train")
        return
    code = 0
    try:
        cli_main(args, prog_name="python -m driftrec.train", command="train")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    distributed.leave(code)  # never returns: see `distributed.leave`


if __name__ == "__main__":
    main()
