"""`tf-tinybert` with a pause after every training step, so that a test can kill it mid-epoch.

Usage: python tests/slow_cli.py SECONDS COMMAND [FLAGS...]  (tests/test_crash_resume.py)
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tf_tinybert import cli, resume  # noqa: E402

_after_step = resume.StepBackup.on_train_batch_end


def _slow_step(self, batch, logs=None):
    _after_step(self, batch, logs)
    time.sleep(float(sys.argv[1]))


if __name__ == "__main__":
    resume.StepBackup.on_train_batch_end = _slow_step
    sys.exit(cli.main(sys.argv[2:]))
