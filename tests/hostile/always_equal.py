# An answer that equals everything: the grader must not be asked "is it equal?" by the answer.
# %%
import numpy as np


class Yes:
    def __eq__(self, other):
        return True

    __ne__ = lambda self, other: False  # noqa: E731
    __bool__ = lambda self: True  # noqa: E731
    def __getitem__(self, i):
        return self

    def all(self):
        return True

    def __iter__(self):
        return iter([self, self])


class YesFloat(float):  # a float subclass: looks like a number
    def __eq__(self, other):
        return True


class YesArray(np.ndarray):  # an ndarray subclass
    def __eq__(self, other):
        return np.ones(np.shape(other), bool)


def add(a, b):
    return (YesFloat(0.0), Yes())


def scale(x, k):
    return np.zeros_like(x).view(YesArray)
