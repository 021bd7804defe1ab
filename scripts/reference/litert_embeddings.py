"""Reference embeddings from the TensorFlow Lite interpreter (ai-edge-litert).

Usage: litert_embeddings.py PACKAGE.tgz MEMBER CROP.png... > out.json
Reads the .tflite member straight from the npm tarball, feeds each 112x112
RGB crop normalised as (x - 127.5) / 128 (the model's batch of 2 is filled by
repeating a crop), and prints {"embeddings": [[...192 floats...], ...]}.
"""
import json
import sys
import tarfile
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


def main():
    package, member, crops = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tarfile.open(package) as tar, tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(tar.extractfile(member).read())
        f.flush()
        interp = Interpreter(model_path=f.name)
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        batch = inp["shape"][0]
        rows = []
        for path in crops:
            x = (np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) - 127.5) / 128.0
            interp.set_tensor(inp["index"], np.repeat(x[None], batch, axis=0))
            interp.invoke()
            rows.append(interp.get_tensor(out["index"])[0].tolist())
    json.dump({"embeddings": rows}, sys.stdout)


if __name__ == "__main__":
    main()
