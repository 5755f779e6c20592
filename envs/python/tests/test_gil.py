"""The GIL is released while the pool steps."""

import gc
import sys
import threading

import numpy as np

import hone_envs


def test_another_thread_runs_while_a_step_runs():
    """With a switch interval of 100 s, a thread waiting for the GIL gets it only when the
    holder releases it. The main thread wakes a second thread and then only steps the pool: the
    second thread runs (and records it) only if a step releases the GIL. (The garbage collector
    is off meanwhile: a finalizer it runs, such as an unclosed pool's close(), may release the
    GIL too.)"""
    envs = hone_envs.make("CartPole-v1", num_envs=100_000, num_threads=1, seed=0)
    envs.reset()
    actions = np.zeros(100_000, dtype=np.int64)
    go, finish = threading.Event(), threading.Event()
    ran = []

    def record_that_it_ran():
        go.wait()
        ran.append(True)
        finish.wait()

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=record_that_it_ran)
    thread.start()
    gc.collect()
    gc.disable()
    sys.setswitchinterval(100.0)
    try:
        go.set()
        steps = 0
        # Several steps: the second thread must also be scheduled by the OS during one of them.
        while not ran and steps < 200:
            envs.step(actions)
            steps += 1
        assert ran, f"the second thread never ran during {steps} steps: the GIL stayed held"
    finally:
        finish.set()
        sys.setswitchinterval(interval)
        gc.enable()
        thread.join()
    envs.close()
