"""Convert the MusiCNN checkpoints of the ``musicnn`` PyPI package (ISC) into Essentia models.

    python -m mirkit.tf.convert_musicnn [--musicnn DIR] [-o models/] [--demo-head]

writes ``msd-musicnn-1.pb`` / ``mtt-musicnn-1.pb`` and their ``.json`` (Essentia's node names
``model/Placeholder`` -> ``model/Sigmoid`` (tags), ``model/dense_1/BiasAdd`` (logits),
``model/dense/BiasAdd`` (200-d embeddings), and Essentia's metadata schema, tensorflow.md §1.2),
so that ``extract --model msd-musicnn-1`` works offline. With ``--demo-head`` it also trains a
tiny transfer-learning head on msd-musicnn-1 embeddings of synthetic audio and writes
``demo_tonal_noisy-msd-musicnn-1.pb`` + ``.json`` (a DEMO model: it only tells tones from noise).

The musicnn checkpoints are TF1 ``tf.train.Saver`` files written with the ``tf.compat.v1.layers``
MusiCNN architecture (Pons & Serra 2019; published in ``musicnn/models.py``). The graph is
rebuilt here from plain TF ops (no tf-keras needed) with the checkpoint's variables as constants;
batch norms are in inference mode (moving averages, epsilon 1e-3), dropout is the identity.
The result is a frozen GraphDef made only of allow-listed math ops.
"""

import argparse
import datetime
import glob
import json
import os
import sys

import numpy as np

from ..atomic import write_bytes, write_text
from ..errors import MirkitError

MODELS = {
    "msd-musicnn-1": {
        "checkpoint": "MSD_musicnn", "labels": "MSD_LABELS",
        "name": "MSD MusiCNN", "description": "prediction of the top-50 tags in the dataset",
        "dataset": {"name": "The Millon Song Dataset", "citation": "http://millionsongdataset.com/",
                    "size": "200k up to two minutes audio previews"},
    },
    "mtt-musicnn-1": {
        "checkpoint": "MTT_musicnn", "labels": "MTT_LABELS",
        "name": "MTT MusiCNN", "description": "prediction of the top-50 tags in the dataset",
        "dataset": {"name": "The MagnaTagATune Dataset",
                    "citation": "https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset",
                    "size": "26k 29-second audio clips"},
    },
}
CITATION = ("@inproceedings{pons2019musicnn, title={musicnn: Pre-trained convolutional neural "
            "networks for music audio tagging}, author={Pons, Jordi and Serra, Xavier}, "
            "booktitle={Late-breaking/demo session in 20th International Society for Music "
            "Information Retrieval Conference (LBD-ISMIR2019)}, year={2019}}")
BN_EPSILON = 1e-3


def find_musicnn():
    """Directory of the installed ``musicnn`` package (without importing it: it imports TF)."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise MirkitError("the musicnn package is not installed: pip install --no-deps musicnn",
                          "musicnn")
    return list(spec.submodule_search_locations)[0]


def read_labels(musicnn_dir, attribute):
    """Tag list from musicnn/configuration.py, read as text (the module is not executed)."""
    import ast  # noqa: PLC0415

    with open(os.path.join(musicnn_dir, "configuration.py"), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == attribute
                                                 for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise MirkitError(f"no {attribute} in musicnn/configuration.py", musicnn_dir)


def read_metrics(ckpt_dir):
    metrics = {}
    try:
        with open(os.path.join(ckpt_dir, "experiment.result"), encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return metrics
    values = []
    for line in text.splitlines():
        if ":" in line:
            key, _, val = line.rpartition(":")
            try:
                values.append((key.strip(), float(val)))
            except ValueError:
                pass
    named = {k: v for k, v in values if k in ("ROC-AUC", "PR-AUC")}
    if named:
        return {k: round(v, 2) for k, v in named.items()}
    aucs = [v for k, v in values if k == "AUC"]
    if len(aucs) >= 2:          # MSD result file: ROC-AUC then PR-AUC
        metrics = {"ROC-AUC": round(aucs[0], 2), "PR-AUC": round(aucs[1], 2)}
    return metrics


def _bn_scale(variables, layer):
    var = variables[f"{layer}/moving_variance"].astype(np.float64)
    return variables[f"{layer}/gamma"].astype(np.float64) / np.sqrt(var + BN_EPSILON)


def build_graph(variables, num_classes, fast=True):
    """The MusiCNN inference graph (tf.compat.v1) with ``variables`` {name: ndarray} as constants.

    ``fast=False`` keeps the layer order of the original network in the front end; the
    default pools before the ReLU and batch norm (same values, see below).
    """
    from .graph import tf  # noqa: PLC0415

    t = tf()
    v1 = t.compat.v1
    graph = t.Graph()

    def const(name):
        return t.constant(variables[name].astype(np.float32), name=name.replace("/", "_"))

    def bn(x, layer):
        mean = variables[f"{layer}/moving_mean"].astype(np.float64)
        var = variables[f"{layer}/moving_variance"].astype(np.float64)
        gamma = variables[f"{layer}/gamma"].astype(np.float64)
        beta = variables[f"{layer}/beta"].astype(np.float64)
        scale = gamma / np.sqrt(var + BN_EPSILON)
        offset = beta - mean * scale
        with t.name_scope(f"model/{layer}/"):
            return t.add(t.multiply(x, scale.astype(np.float32), name="mul"),
                         offset.astype(np.float32), name="add")

    def conv(x, layer, padding):
        with t.name_scope(f"model/{layer}/"):
            y = t.nn.conv2d(x, variables[f"{layer}/kernel"].astype(np.float32),
                            strides=[1, 1, 1, 1], padding=padding, name="Conv2D")
            y = t.nn.bias_add(y, variables[f"{layer}/bias"].astype(np.float32), name="BiasAdd")
            return t.nn.relu(y, name="Relu")

    def pad_time(x, name):
        return t.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]], name=name)

    with graph.as_default():
        x = v1.placeholder(t.float32, shape=[None, 187, 96], name="model/Placeholder")
        with t.name_scope("model/"):
            x4 = t.expand_dims(x, 3, name="ExpandDims")
        normalized = bn(x4, "batch_normalization")
        pad7 = pad_time(normalized, "model/Pad")
        # front end: timbral (7x38, 7x67 valid) and temporal (128/64/32 x1 same) blocks,
        # each max-pooled over the whole frequency axis
        blocks = []
        for conv_name, bn_name, inp, padding in (
                ("conv2d", "batch_normalization_1", pad7, "VALID"),
                ("conv2d_1", "batch_normalization_2", pad7, "VALID"),
                ("conv2d_2", "batch_normalization_3", normalized, "SAME"),
                ("conv2d_3", "batch_normalization_4", normalized, "SAME"),
                ("conv2d_4", "batch_normalization_5", normalized, "SAME")):
            if not fast:
                y = bn(conv(inp, conv_name, padding), bn_name)
                with t.name_scope(f"model/{conv_name}_pool/"):
                    blocks.append(t.reduce_max(y, axis=2, name="Max"))
                continue
            # Same values, less work: max over frequency of BN(ReLU(z)) with BN = s*y + o is
            # s*ReLU(max z) + o where s > 0, and s*ReLU(-max(-z)) + o where s < 0. Negating
            # the kernel and bias of the s < 0 channels (exact in floating point) turns both
            # into one max of the conv output, so ReLU and BN run on the pooled [B, T, C]
            # tensor instead of [B, T, F, C] (about 20% less inference time).
            scale = _bn_scale(variables, bn_name)
            sign = np.where(scale < 0, -1.0, 1.0).astype(np.float32)
            kernel = variables[f"{conv_name}/kernel"].astype(np.float32) * sign
            bias = variables[f"{conv_name}/bias"].astype(np.float32) * sign
            with t.name_scope(f"model/{conv_name}/"):
                z = t.nn.bias_add(t.nn.conv2d(inp, kernel, strides=[1, 1, 1, 1],
                                              padding=padding, name="Conv2D"),
                                  bias, name="BiasAdd")
            with t.name_scope(f"model/{conv_name}_pool/"):
                pooled = t.reduce_max(z, axis=2, name="Max")
                pooled = t.nn.relu(t.multiply(pooled, sign, name="sign"), name="Relu")
            blocks.append(bn(pooled, bn_name))
        with t.name_scope("model/"):
            front = t.concat(blocks, 2, name="concat")                 # [B, T, 561]
            front4 = t.expand_dims(front, 3, name="ExpandDims_1")      # [B, T, 561, 1]
        # mid end: three dense-connected conv layers with residuals
        c1 = bn(conv(pad_time(front4, "model/Pad_1"), "conv2d_5", "VALID"), "batch_normalization_6")
        c1t = t.transpose(c1, [0, 1, 3, 2], name="model/transpose")
        c2 = bn(conv(pad_time(c1t, "model/Pad_2"), "conv2d_6", "VALID"), "batch_normalization_7")
        res2 = t.add(t.transpose(c2, [0, 1, 3, 2], name="model/transpose_1"), c1t, name="model/Add")
        c3 = bn(conv(pad_time(res2, "model/Pad_3"), "conv2d_7", "VALID"), "batch_normalization_8")
        res3 = t.add(t.transpose(c3, [0, 1, 3, 2], name="model/transpose_2"), res2,
                     name="model/Add_1")
        with t.name_scope("model/"):
            mid = t.concat([front4, c1t, res2, res3], 2, name="concat_1")  # [B, T, 753, 1]
            # back end: temporal max and mean pooling, dense 200 (embeddings), dense 50 (logits)
            pooled = t.concat([t.reduce_max(mid, axis=1, name="Max"),
                               t.reduce_mean(mid, axis=1, name="Mean")], 2, name="concat_2")
            flat = t.reshape(pooled, [-1, 1506], name="flatten/Reshape")
        flat = bn(flat, "batch_normalization_9")
        with t.name_scope("model/dense/"):
            dense = t.nn.bias_add(t.matmul(flat, variables["dense/kernel"].astype(np.float32),
                                           name="MatMul"),
                                  variables["dense/bias"].astype(np.float32), name="BiasAdd")
            relu = t.nn.relu(dense, name="Relu")
        bn_dense = bn(relu, "batch_normalization_10")
        with t.name_scope("model/dense_1/"):
            logits = t.nn.bias_add(t.matmul(bn_dense,
                                            variables["dense_1/kernel"].astype(np.float32),
                                            name="MatMul"),
                                   variables["dense_1/bias"].astype(np.float32), name="BiasAdd")
        t.nn.sigmoid(logits, name="model/Sigmoid")
        assert logits.shape[-1] == num_classes
    return graph


def read_checkpoint(ckpt_dir):
    from .graph import tf  # noqa: PLC0415

    t = tf()
    prefix = os.path.join(ckpt_dir, "")     # the files are named '.index', '.data-...'
    if not glob.glob(prefix + ".index"):
        raise MirkitError("no TF checkpoint (.index) in this directory", ckpt_dir)
    reader = t.compat.v1.train.NewCheckpointReader(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "Adam" not in name and "power" not in name}


def metadata(model_name, spec, classes, metrics):
    return {
        "name": spec["name"],
        "type": "auto-tagging",
        "link": f"https://essentia.upf.edu/models/feature-extractors/musicnn/{model_name}.pb",
        "version": "1",
        "description": spec["description"],
        "author": "Jordi Pons (weights, musicnn PyPI package, ISC licence); converted by mirkit",
        "email": "",
        "release_date": datetime.date.today().isoformat(),
        "framework": "tensorflow",
        "framework_version": "1.15.0",
        "classes": classes,
        "model_types": ["frozen_model"],
        "dataset": dict(spec["dataset"], metrics=metrics),
        "schema": {
            "inputs": [{"name": "model/Placeholder", "type": "float", "shape": [187, 96]}],
            "outputs": [
                {"name": "model/Sigmoid", "type": "float", "shape": [1, len(classes)],
                 "op": "Sigmoid", "output_purpose": "predictions"},
                {"name": "model/dense_1/BiasAdd", "type": "float", "shape": [1, len(classes)],
                 "op": "fully connected", "description": "logits", "output_purpose": ""},
                {"name": "model/dense/BiasAdd", "type": "float", "shape": [1, 200],
                 "op": "fully connected", "output_purpose": "embeddings"},
            ],
        },
        "citation": CITATION,
        "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictMusiCNN"},
    }


def convert(model_name, musicnn_dir, out_dir):
    spec = MODELS[model_name]
    ckpt_dir = os.path.join(musicnn_dir, spec["checkpoint"])
    classes = read_labels(musicnn_dir, spec["labels"])
    graph = build_graph(read_checkpoint(ckpt_dir), len(classes))
    pb = os.path.join(out_dir, model_name + ".pb")
    write_bytes(pb, graph.as_graph_def().SerializeToString())
    meta = metadata(model_name, spec, classes, read_metrics(ckpt_dir))
    write_text(os.path.join(out_dir, model_name + ".json"), json.dumps(meta, indent=2) + "\n")
    return pb


def verify_against_checkpoint(model_name, musicnn_dir, pb, n=3, seed=0):
    """Max |difference| of our .pb vs the checkpoint's own TF1 meta graph on random patches."""
    from .graph import Graph, tf  # noqa: PLC0415

    t = tf()
    spec = MODELS[model_name]
    prefix = os.path.join(musicnn_dir, spec["checkpoint"], "")
    x = np.random.default_rng(seed).uniform(0, 3, (n, 187, 96)).astype(np.float32)
    variables = read_checkpoint(os.path.join(musicnn_dir, spec["checkpoint"]))
    meta = t.compat.v1.MetaGraphDef()
    with open(prefix + ".meta", "rb") as fh:
        meta.ParseFromString(fh.read())
    # the original inference subgraph, with the variables replaced by their checkpoint values
    sub = t.compat.v1.graph_util.extract_sub_graph(
        meta.graph_def, ["model/Sigmoid", "model/dense/BiasAdd"])
    for node in sub.node:
        node.attr.pop("_output_shapes", None)
        if node.op in ("VariableV2", "Variable"):
            value = variables[node.name]
            node.op = "Const"
            for key in list(node.attr):
                del node.attr[key]
            node.attr["dtype"].type = t.float32.as_datatype_enum
            node.attr["value"].tensor.CopyFrom(t.make_tensor_proto(value.astype(np.float32)))
    g = t.Graph()
    with g.as_default():
        t.compat.v1.import_graph_def(sub, name="")
        with t.compat.v1.Session(graph=g) as sess:
            feed = {"model/Placeholder:0": x}
            for op in g.get_operations():
                if op.type == "Placeholder" and op.outputs[0].dtype == t.bool:
                    feed[op.outputs[0]] = False
            ref = sess.run(["model/Sigmoid:0", "model/dense/BiasAdd:0"], feed_dict=feed)
    ours = Graph(pb, "model/Placeholder", ["model/Sigmoid", "model/dense/BiasAdd"]).run(x)
    return [float(np.abs(a - b).max()) for a, b in zip(ours, ref)]


# ---------------------------------------------------------------------------------------------
# Demo head


def _demo_audio(rng, kind, seconds=6.0, sr=16000):
    tt = np.arange(int(seconds * sr)) / sr
    if kind == "tonal":
        f0 = rng.uniform(110, 880)
        sig = sum(rng.uniform(0.2, 1.0) / (k + 1) * np.sin(2 * np.pi * f0 * (k + 1) * tt)
                  for k in range(4))
        sig *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 3.0) * tt)
    else:
        sig = rng.standard_normal(tt.size)
        if rng.uniform() < 0.5:
            sig = np.cumsum(sig)
            sig -= np.convolve(sig, np.ones(64) / 64, mode="same")
        sig *= (rng.uniform(size=tt.size) < rng.uniform(0.05, 1.0))
    sig = sig / (np.abs(sig).max() + 1e-9) * rng.uniform(0.1, 0.8)
    return sig.astype(np.float32)


def build_head(weights, bias, name="model"):
    """A TensorflowPredict2D head graph: model/Placeholder [-1,D] -> model/Softmax."""
    from .graph import tf  # noqa: PLC0415

    t = tf()
    graph = t.Graph()
    with graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, weights.shape[0]],
                                    name=f"{name}/Placeholder")
        with t.name_scope(f"{name}/dense/"):
            logits = t.nn.bias_add(t.matmul(x, weights.astype(np.float32), name="MatMul"),
                                   bias.astype(np.float32), name="BiasAdd")
        t.nn.softmax(logits, name=f"{name}/Softmax")
    return graph


def train_logistic(x, y, n_classes, steps=500, lr=0.5, l2=1e-3):
    """Multinomial logistic regression by full-batch gradient descent (numpy)."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mu) / sd
    w = np.zeros((x.shape[1], n_classes))
    b = np.zeros(n_classes)
    onehot = np.eye(n_classes)[y]
    for _ in range(steps):
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(z)
        w -= lr * (z.T @ grad + l2 * w)
        b -= lr * grad.sum(axis=0)
    # fold the standardisation into the weights: (x - mu)/sd @ w + b
    w_raw = w / sd[:, None]
    b_raw = b - (mu / sd) @ w
    return w_raw, b_raw


def make_demo_head(out_dir, musicnn_pb, n_per_class=12, seed=1):
    """Train the demo head (tonal vs noisy) on msd-musicnn-1 embeddings of synthetic audio."""
    from .models import load_audio_model  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    model = load_audio_model(musicnn_pb)
    classes = ["noisy", "tonal"]
    xs, ys = [], []
    for label, kind in enumerate(classes):
        for _ in range(n_per_class):
            _, emb = model.run(_demo_audio(rng, kind))
            xs.append(emb)
            ys.extend([label] * len(emb))
    x = np.concatenate(xs).astype(np.float64)
    y = np.asarray(ys)
    w, b = train_logistic(x, y, len(classes))
    accuracy = float(((x @ w + b).argmax(axis=1) == y).mean())
    graph = build_head(w, b)
    stem = "demo_tonal_noisy-msd-musicnn-1"
    pb = os.path.join(out_dir, stem + ".pb")
    write_bytes(pb, graph.as_graph_def().SerializeToString())
    meta = {
        "name": "DEMO tonal/noisy (synthetic)",
        "type": "multi-class classifier",
        "link": "",
        "version": "1",
        "description": "DEMO ONLY: a transfer-learning head trained by mirkit's make models on "
                       "msd-musicnn-1 embeddings of synthetic harmonic tones vs noise. It shows "
                       "how classify applies heads; it says nothing useful about real music.",
        "author": "mirkit (generated)", "email": "",
        "release_date": datetime.date.today().isoformat(),
        "framework": "tensorflow", "framework_version": "2",
        "classes": classes,
        "model_types": ["frozen_model"],
        "dataset": {"name": "synthetic tones and noise", "citation": "", "size":
                    f"{2 * n_per_class} clips of 6 s",
                    "metrics": {"training accuracy": round(accuracy, 3)}},
        "schema": {
            "inputs": [{"name": "model/Placeholder", "type": "float", "shape": [200]}],
            "outputs": [
                {"name": "model/Softmax", "type": "float", "shape": [2], "op": "Softmax",
                 "output_purpose": "predictions"},
                {"name": "model/dense/BiasAdd", "type": "float", "shape": [2],
                 "op": "fully connected", "output_purpose": ""},
            ],
        },
        "citation": "",
        "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredict2D",
                      "embedding_model": {"algorithm": "TensorflowPredictMusiCNN",
                                          "model_name": "msd-musicnn-1",
                                          "link": "https://essentia.upf.edu/models/"
                                                  "feature-extractors/musicnn/msd-musicnn-1.pb"}},
    }
    write_text(os.path.join(out_dir, stem + ".json"), json.dumps(meta, indent=2) + "\n")
    return pb, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="convert_musicnn",
        description="Convert the musicnn package's MusiCNN checkpoints into Essentia-format "
                    ".pb + .json models (and optionally a demo transfer head).")
    parser.add_argument("-o", "--output-dir", default="models", help="where to write (models/)")
    parser.add_argument("--musicnn", help="the musicnn package directory (default: installed)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--verify", action="store_true",
                        help="compare with the checkpoint's own TF1 graph on random patches")
    parser.add_argument("--demo-head", action="store_true",
                        help="also train the demo head demo_tonal_noisy-msd-musicnn-1.pb")
    args = parser.parse_args(argv)
    try:
        musicnn_dir = args.musicnn or find_musicnn()
        os.makedirs(args.output_dir, exist_ok=True)
        for name in args.models:
            pb = convert(name, musicnn_dir, args.output_dir)
            print(f"convert_musicnn: wrote {pb}", file=sys.stderr)
            if args.verify:
                diffs = verify_against_checkpoint(name, musicnn_dir, pb)
                print(f"convert_musicnn: {name}: max |diff| vs checkpoint graph: tags "
                      f"{diffs[0]:.2e}, embeddings {diffs[1]:.2e}", file=sys.stderr)
        if args.demo_head:
            pb, acc = make_demo_head(args.output_dir,
                                     os.path.join(args.output_dir, "msd-musicnn-1.pb"))
            print(f"convert_musicnn: wrote {pb} (DEMO head, training accuracy {acc:.3f})",
                  file=sys.stderr)
    except MirkitError as exc:
        print(f"convert_musicnn: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
