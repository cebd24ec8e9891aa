#!/usr/bin/env python3
"""Write synthetic Essentia-layout descriptor files into class folders (DIR/<class>/<id>.json)
for the example pipeline. Usage: make_synthetic.py DIR [N_TRACKS] [N_CLASSES]"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from mirkit.svm.synthetic import make_records  # noqa: E402


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    names = ["ambient", "rock", "techno", "jazz", "folk"][:k]
    records, labels = make_records(n, k, seed=11, separation=0.35, class_names=names)
    for record, (pid, label) in zip(records, labels.items()):
        os.makedirs(os.path.join(out, label), exist_ok=True)
        record["metadata"]["id"] = f"{label}/{pid}"
        with open(os.path.join(out, label, pid + ".json"), "w") as fh:
            json.dump(record, fh)


if __name__ == "__main__":
    main()
