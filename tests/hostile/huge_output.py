# Print far more than the output limit, write a file over the file-size limit, and return
# an answer too large to read.
# %%
import sys

for _ in range(40):
    sys.stdout.write("x" * 2**20 + "\n")
# %%
with open("big.bin", "wb") as f:
    f.write(b"\0" * 64 * 2**20)
# %%
import numpy as np


def add(a, b):
    return a + b


def scale(x, k):
    return np.zeros(3_000_000)  # too large to hand back
