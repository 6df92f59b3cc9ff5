"""The worker process's entry point: ``python -I -S boot.py LIBDIR SITEDIRS_JSON RFD WFD``.

Sets the import path to the grading library copy (``LIBDIR``: a redacted
``supercourse``, a stand-in ``autograder`` and this package) followed by the
interpreter's site directories, closes every other inherited file descriptor,
then serves the grader over file descriptors RFD (requests in) and WFD
(answers out). The working directory is not on the path.
"""

import json
import os
import site
import sys


def main() -> None:
    lib, sitedirs = sys.argv[1], json.loads(sys.argv[2])
    rfd, wfd = int(sys.argv[3]), int(sys.argv[4])
    for fd in range(3, 1024):
        if fd not in (rfd, wfd):
            try:
                os.close(fd)
            except OSError:
                pass
    sys.path[:] = [lib] + [p for p in sys.path if p and p != os.getcwd()]
    for d in sitedirs:
        site.addsitedir(d)
    sys.argv = [sys.argv[0]]
    rfile = os.fdopen(rfd, "rb", buffering=1 << 16)
    wfile = os.fdopen(wfd, "wb", buffering=1 << 16)
    import torch

    torch.set_num_threads(1)
    from IPython.core.interactiveshell import InteractiveShell

    class GradingShell(InteractiveShell):
        def enable_gui(self, gui=None):  # `%matplotlib inline` and friends: no event loop to hook in the worker
            return None

    shell = GradingShell.instance(colors="NoColor")
    shell.InteractiveTB.set_mode("Plain")
    shell.user_ns["__name__"] = "__main__"
    from grading_worker.serve import Server

    try:
        import grading_worker.lesson as helpers  # the lesson's own worker.py, when it has one
    except ImportError:
        helpers = None
    Server(rfile, wfile, shell=shell, helpers=helpers).serve()


if __name__ == "__main__":
    main()
