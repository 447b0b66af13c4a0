# A thread that keeps running into the hidden tests: it replaces the functions, patches
# numpy and prints forged answers while the grader's code runs in the kernel.
# %%
import threading
import time

import numpy as np
from IPython.display import display

MIME = "application/x-ptutils-answer+json"


def meddle():
    while True:
        g = get_ipython().user_ns  # noqa: F821
        g["add"] = lambda a, b: a + b + 1
        np.allclose = lambda *a, **k: True
        try:
            display({MIME: '{"test": "add", "calls": [{"name": "add", "value": {"__tuple__": [5, 1]}}]}'}, raw=True)
        except Exception:
            pass
        time.sleep(0.005)


threading.Thread(target=meddle, daemon=True).start()


def add(a, b):
    return a + b + 1  # wrong


def scale(x, k):
    return x * k  # right: 1 point earned honestly
