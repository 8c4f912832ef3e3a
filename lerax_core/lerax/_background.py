"""Threads that work beside training (logging backends, the checkpoint writer) yield to it."""

import os
import sys
import threading

NICENESS = 19
"""The scheduling niceness of background threads: the lowest CPU priority."""


def lower_priority() -> None:
    """Give the calling thread, and the threads and processes it starts, the
    lowest CPU priority (Linux).

    Training keeps every core busy with XLA's threads; a backend thread
    formatting rows, or a service process it starts (W&B's), at the same
    priority takes its CPU time from training, a few per cent of the run on two
    cores. At the lowest priority it runs on what training leaves idle (between
    kernels, and at once when training ends), and its queue, bounded in
    iterations, absorbs the wait. Linux schedules threads one by one (elsewhere
    a priority is the whole process's, so nothing changes there); a thread that
    cannot be reniced keeps its priority.
    """
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, NICENESS)
    except OSError:  # a sandbox that forbids it: run as we are
        pass
