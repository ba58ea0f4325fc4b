"""`python3 workers/python/worker.py`: the same as `python3 -m flota_worker` run from workers/python."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flota_worker.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
