#!/usr/bin/env python3
"""tools/check_layers.py — the folders form a tree: fails on any #include that reaches
up or sideways (a circle in the making).

Each folder has a level; a file may include headers of its own folder or of folders
at a lower level. kernels/<family>/ are siblings: one family does not include another.
Usage: check_layers.py [repository root]   (exit 1 and a list of the edges when broken)
"""
import os
import re
import sys

# (folder prefix, level), longest prefix wins
LEVELS = [
    ("host/base", 0),             # the leaf: errors, atomic files
    ("host", 1),                  # image decode, data set, loader, HDF5
    ("kernels/common", 1),        # the backend contract, op vocabulary, contexts
    ("kernels", 2),               # op families, CPU and CUDA side by side
    ("engine/model", 2),          # the layer graph, the model
    ("engine/model/zoo", 2.5),    # the architectures, built with the graph's API
    ("engine/backends", 3),       # the backends: memory, streams, the tables
    ("engine/runtime", 4),        # dispatch, plan, executor
    ("engine/train", 5),          # the training application
    ("tools/cli", 6),             # the command line
]


def level_of(folder):
    best = None
    for prefix, level in LEVELS:
        if folder == prefix or folder.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, level)
    return best


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    include = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    bad, edges = [], set()
    for top in ("host", "kernels", "engine", "tools/cli"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if not name.endswith((".c", ".h", ".cu")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                src_dir = os.path.dirname(rel)
                src = level_of(src_dir)
                if src is None:
                    bad.append(f"{rel}: folder {src_dir} has no level in tools/check_layers.py")
                    continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for target in include.findall(text):
                    dst_dir = os.path.dirname(target)
                    if not dst_dir or dst_dir == src_dir:
                        continue
                    dst = level_of(dst_dir)
                    if dst is None:
                        continue  # a system or third-party header
                    edges.add((src_dir, dst_dir))
                    if dst[1] >= src[1]:
                        bad.append(f"{rel} includes {target}: {dst_dir} (level {dst[1]}) is not "
                                   f"below {src_dir} (level {src[1]})")
    if bad:
        print("include edges that break the folder tree:")
        for b in bad:
            print("  " + b)
        return 1
    print(f"folder tree ok: {len(edges)} include edges between folders, all pointing down")
    if "-v" in sys.argv:
        for a, b in sorted(edges):
            print(f"  {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
