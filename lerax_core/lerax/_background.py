"""Threads that work beside training (logging backends, the checkpoint writer) yield to it."""

import os
import sys
import threading

NICENESS = 19
"""The scheduling niceness of background threads: the lowest CPU priority."""


def lower_priority() -> None:
    """Give the calling thread, and the threads and processes it starts, the
    lowest CPU priority (Linux).

    When the cores are oversubscribed, the scheduler then runs training's
    threads first and the background work waits (its queue, bounded in
    iterations, absorbs that). It does not make the background CPU time free:
    on a machine whose cores training keeps busy, that time still slows
    training about as much (measured on 2 cores: `benchmarks/README.md`). Linux
    schedules threads one by one; elsewhere a priority is the whole process's,
    so nothing changes there. A thread that cannot be reniced keeps its
    priority.
    """
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, NICENESS)
    except OSError:  # a sandbox that forbids it: run as we are
        pass
