"""What a recipe run as a script (`python recipes/NAME.py`) imports first:
this checkout's root goes first on `sys.path`, so the script runs this
checkout's `toolkit` and `recipes`, whatever copy is installed (a second
`git worktree`, say). Importable as `_checkout` because Python puts the
script's own folder, `recipes/`, on `sys.path`.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))
