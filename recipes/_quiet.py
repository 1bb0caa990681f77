"""Keep TensorFlow's native start-up chatter out of the terminal.

Importing TensorFlow and probing for devices makes its C++ runtime write to
the process's stderr directly (CUDA probing errors on a machine without a
GPU, "This TensorFlow binary is optimized..." notes, absl's "All log
messages before absl::InitializeLog()" line). `TF_CPP_MIN_LOG_LEVEL` does
not reach all of them, so `import_tensorflow_quietly` points file
descriptor 2 at /dev/null while TensorFlow imports and lists its physical
devices, then puts it back. Python errors and everything later print as
usual. It does not start the runtime, so logical devices can still be
configured afterwards. Set `TOOLKIT_TF_LOGS=1` to see the chatter.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    if os.environ.get("TOOLKIT_TF_LOGS") == "1" or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()
    except ImportError:
        pass  # the import that needs it raises, with its message shown
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
