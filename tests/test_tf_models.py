"""TensorFlow model loading, security check, audio models, heads and run_models.

Every graph is built here (tiny, or MusiCNN with random weights through the converter's own
graph builder): nothing is downloaded. TensorFlow is imported once for the module. The
essentia-tensorflow oracle runs in a subprocess (its bundled TF 2.5 must not meet
tensorflow-cpu in one process); set MIRKIT_ORACLE_PATH to a directory holding an
essentia-tensorflow install when the environment's essentia lacks the TF algorithms.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import tf_oracle_env as oracle_env

from mirkit.errors import MirkitError
from mirkit.tf import frontends as fe

tf = pytest.importorskip("tensorflow")

from mirkit.tf import convert_musicnn, models  # noqa: E402
from mirkit.tf.extract import run_models  # noqa: E402
from mirkit.tf.graph import Graph, forbidden_ops  # noqa: E402

SR = 22050


def save_graph(graph, path, meta=None):
    path.write_bytes(graph.as_graph_def().SerializeToString())
    if meta is not None:
        path.with_suffix(".json").write_text(json.dumps(meta))
    return str(path)


def musicnn_variables(seed=0, classes=5):
    """Random weights with the shapes of the musicnn checkpoints (see convert_musicnn)."""
    rng = np.random.default_rng(seed)
    v = {}
    convs = {"conv2d": (7, 38, 1, 204), "conv2d_1": (7, 67, 1, 204), "conv2d_2": (128, 1, 1, 51),
             "conv2d_3": (64, 1, 1, 51), "conv2d_4": (32, 1, 1, 51), "conv2d_5": (7, 561, 1, 64),
             "conv2d_6": (7, 64, 1, 64), "conv2d_7": (7, 64, 1, 64)}
    for name, shape in convs.items():
        v[name + "/kernel"] = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:3]))
        v[name + "/bias"] = rng.standard_normal(shape[3]) * 0.1
    bns = [1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200]
    for i, n in enumerate(bns):
        name = "batch_normalization" + (f"_{i}" if i else "")
        v[name + "/moving_mean"] = rng.standard_normal(n) * 0.1
        v[name + "/moving_variance"] = rng.uniform(0.5, 2, n)
        v[name + "/gamma"] = rng.uniform(0.5, 1.5, n) * rng.choice([-1, 1], n)  # as trained
        v[name + "/beta"] = rng.standard_normal(n) * 0.1
    v["dense/kernel"] = rng.standard_normal((1506, 200)) / np.sqrt(1506)
    v["dense/bias"] = rng.standard_normal(200) * 0.1
    v["dense_1/kernel"] = rng.standard_normal((200, classes)) / np.sqrt(200)
    v["dense_1/bias"] = rng.standard_normal(classes) * 0.1
    return v


def musicnn_meta(classes):
    meta = convert_musicnn.metadata("test-musicnn-1", convert_musicnn.MODELS["msd-musicnn-1"],
                                    classes, {})
    for out in meta["schema"]["outputs"]:
        if out["name"] != "model/dense/BiasAdd":
            out["shape"] = [1, len(classes)]
    return meta


def head_meta(classes, emb="test-musicnn-1", input_name="model/Placeholder",
              output="model/Softmax"):
    return {"name": "test head", "classes": classes,
            "schema": {"inputs": [{"name": input_name, "type": "float", "shape": [200]}],
                       "outputs": [{"name": output, "type": "float", "shape": [len(classes)],
                                    "op": "Softmax", "output_purpose": "predictions"}]},
            "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredict2D",
                          "embedding_model": {"algorithm": "TensorflowPredictMusiCNN",
                                              "model_name": emb}}}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Small real .pb models built for these tests."""
    d = tmp_path_factory.mktemp("tf_models")
    z = {"dir": d}
    classes = ["a", "b", "c", "d", "e"]
    z["musicnn_classes"] = classes
    z["musicnn"] = save_graph(convert_musicnn.build_graph(musicnn_variables(), 5),
                              d / "test-musicnn-1.pb", musicnn_meta(classes))
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((200, 3)) * 0.1, rng.standard_normal(3) * 0.1
    z["head_wb"] = (w, b)
    z["head"] = save_graph(convert_musicnn.build_head(w, b),
                           d / "head-test-musicnn-1.pb", head_meta(["x", "y", "z"]))
    # a head whose placeholder is [-1, 1, 200] (Essentia feeds [N, 200]: rank relaxation)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 1, 200], name="flatten_in_input")
        flat = tf.reshape(x, [-1, 200])
        tf.identity(tf.matmul(flat, w.astype(np.float32)) + b.astype(np.float32), name="dense_out")
    z["head3d"] = save_graph(g, d / "head3d.pb",
                             head_meta(["p", "q", "r"], input_name="flatten_in_input",
                                       output="dense_out"))
    # tiny VGGish-like model: [-1, 96, 64] -> model/Sigmoid (2), embeddings (8)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 96, 64], name="model/Placeholder")
        pooled = tf.concat([tf.reduce_mean(x, 1), tf.reduce_max(x, 1)], 1)
        emb = tf.nn.relu(tf.matmul(pooled, rng.standard_normal((128, 8)).astype(np.float32) * .1),
                         name="model/vggish/embeddings")
        tf.nn.sigmoid(tf.matmul(emb, rng.standard_normal((8, 2)).astype(np.float32)),
                      name="model/Sigmoid")
    z["vggish"] = save_graph(g, d / "tiny-vggish-1.pb", {
        "classes": ["no", "yes"],
        "schema": {"inputs": [{"name": "model/Placeholder", "shape": [96, 64]}],
                   "outputs": [{"name": "model/Sigmoid", "op": "Sigmoid",
                                "output_purpose": "predictions"},
                               {"name": "model/vggish/embeddings",
                                "output_purpose": "embeddings"}]},
        "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictVGGish"}})
    # tiny TempoCNN-like model: input [-1, 40, -1, 1] -> output (softmax over 256 BPM classes)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 40, None, 1], name="input")
        h = tf.nn.conv2d(x, rng.standard_normal((3, 3, 1, 4)).astype(np.float32), 1, "SAME")
        h = tf.reduce_mean(tf.nn.relu(h), axis=[2])                     # [B, 40, 4]
        h = tf.reshape(h, [-1, 160])
        tf.nn.softmax(tf.matmul(h, rng.standard_normal((160, 256)).astype(np.float32)),
                      name="output")
    z["tempo"] = save_graph(g, d / "tiny-tempocnn.pb", {
        "classes": [str(i + 30) for i in range(256)],
        "schema": {"inputs": [{"name": "input"}],
                   "outputs": [{"name": "output", "op": "Softmax",
                                "output_purpose": "predictions"}]},
        "inference": {"sample_rate": 11025, "algorithm": "TempoCNN"}})
    # tiny EffNet-like model: fixed batch of 64, [64, 128, 96] -> PartitionedCall:0/:1
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [64, 128, 96],
                                     name="serving_default_melspectrogram")
        pooled = tf.reshape(tf.concat([tf.reduce_mean(x, 1), tf.reduce_max(x, 1)], 1),
                            [64, 192])                       # only runs with a batch of 64
        emb = tf.nn.relu(tf.matmul(pooled, rng.standard_normal((192, 6)).astype(np.float32)
                                   * .1))
        tf.identity_n([tf.nn.sigmoid(tf.matmul(emb, rng.standard_normal((6, 3))
                                               .astype(np.float32))), emb],
                      name="PartitionedCall")
    z["effnet"] = save_graph(g, d / "tiny-effnet-bs64-1.pb", {
        "classes": ["r", "s", "t"],
        "schema": {"inputs": [{"name": "serving_default_melspectrogram",
                               "shape": [64, 128, 96]}],
                   "outputs": [{"name": "PartitionedCall:0", "op": "Sigmoid",
                                "output_purpose": "predictions"},
                               {"name": "PartitionedCall:1", "op": "Flatten",
                                "output_purpose": "embeddings"}]},
        "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictEffnetDiscogs"}})
    # tiny MAEST-like models (tensorflow.md §2.6): input melspectrogram [1, P, 96] (batch 1),
    # Identity = predictions [1, 3], PartitionedCall/Identity_7 = tokens [1, 6, 8] (CLS,
    # DIST, then 4 tokens each averaging every 4th frame). Essentia sets the 5 s patch from
    # the path containing "discogs-maest-5s-"; "tiny-maest-5s-1" (no .json) is a 30 s model.
    w_tok = rng.standard_normal((96, 8)).astype(np.float32) * 0.3
    w_cls = rng.standard_normal((8, 3)).astype(np.float32)
    for key, stem, frames_ in (("maest5", "discogs-maest-5s-pw-1", 316),
                               ("maest30", "tiny-maest-5s-1", 1876)):
        g = tf.Graph()
        with g.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [1, frames_, 96], name="melspectrogram")
            toks = tf.stack([tf.reduce_mean(x[:, k::4, :], 1) for k in range(4)], 1)
            h = tf.tanh(tf.einsum("btf,fd->btd", toks, w_tok))              # [1, 4, 8]
            cls = tf.reduce_mean(h, 1, keepdims=True)
            emb = tf.concat([cls, tf.reduce_max(h, 1, keepdims=True), h], 1)  # [1, 6, 8]
            with tf.name_scope("PartitionedCall"):
                tf.identity(emb, name="Identity_7")
            tf.nn.sigmoid(tf.matmul(cls[:, 0, :], w_cls), name="Identity")
        meta = None if key == "maest30" else {
            "name": "tiny maest", "classes": ["m0", "m1", "m2"],
            "schema": {"inputs": [{"name": "melspectrogram", "shape": [1, frames_, 96]}],
                       "outputs": [{"name": "Identity", "op": "Sigmoid",
                                    "output_purpose": "predictions"},
                                   {"name": "PartitionedCall/Identity_7",
                                    "output_purpose": "embeddings"}]},
            "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictMAEST"}}
        z[key] = save_graph(g, d / f"{stem}.pb", meta)
    # tiny OpenL3-like model (no .json: the name selects the gist's front end): [B,128,199,1]
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 128, 199, 1], name="melspectrogram")
        tf.tanh(tf.matmul(tf.reduce_mean(x, axis=[2, 3]),
                          rng.standard_normal((128, 6)).astype(np.float32) * 0.05),
                name="embeddings")
    z["openl3"] = save_graph(g, d / "tiny-openl3-mel128.pb")
    # a graph with a forbidden op (reads a file)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 200], name="model/Placeholder")
        data = tf.io.read_file("/etc/hostname")
        n = tf.cast(tf.strings.length(data), tf.float32)
        tf.nn.softmax(x[:, :2] + n, name="model/Softmax")
    z["evil"] = save_graph(g, d / "evil-test-musicnn-1.pb", head_meta(["u", "v"]))
    # the audio signal: 8 s of tones + noise at 22.05 kHz
    t = np.arange(int(SR * 8.0)) / SR
    noise = np.random.default_rng(5).standard_normal(t.size)
    z["audio"] = (0.3 * np.sin(2 * np.pi * 440 * t * (1 + 0.02 * np.sin(2 * t)))
                  + 0.05 * noise).astype(np.float32)
    return z


# --- loading and security ------------------------------------------------------------------

def test_forbidden_op_refused(zoo):
    with pytest.raises(MirkitError) as err:
        models.HeadModel(zoo["evil"])
    msg = str(err.value)
    assert "ReadFile" in msg and "--allow-any-op" in msg and zoo["evil"] in msg
    assert "\n" not in msg
    # explicit override loads it
    model = models.HeadModel(zoo["evil"], allow_any_op=True)
    assert model.info.classes == ["u", "v"]


def test_allow_list_checks_function_library():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def f(x):
        tf.print(x)
        return x * 2
    graph_def = f.get_concrete_function().graph.as_graph_def()
    assert "PrintV2" in forbidden_ops(graph_def)


def test_bad_pb(zoo, tmp_path):
    bad = tmp_path / "broken.pb"
    bad.write_bytes(b"this is not a protobuf \x00\xff\xfe" * 10)
    with pytest.raises(MirkitError) as err:
        models.load_head(str(bad), embedding_model="x")
    assert str(bad) in str(err.value) and "GraphDef" in str(err.value)
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    with pytest.raises(MirkitError):
        Graph(str(empty), "model/Placeholder", ["model/Sigmoid"])
    # through extract --model: the same one-line error naming the file
    with pytest.raises(MirkitError) as err:
        run_models(zoo["audio"][:SR], SR, [str(bad)])
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(MirkitError, match="no such model"):
        run_models(zoo["audio"][:SR], SR, ["no-such-model-1"])


def test_json_not_matching_graph(zoo, tmp_path):
    # wrong input node name in the .json
    pb = tmp_path / "mismatch-1.pb"
    pb.write_bytes(open(zoo["head"], "rb").read())
    pb.with_suffix(".json").write_text(json.dumps(head_meta(["x", "y", "z"],
                                                            input_name="serving_default_x")))
    with pytest.raises(MirkitError) as err:
        models.HeadModel(str(pb))
    assert "does not match the graph" in str(err.value) and "serving_default_x" in str(err.value)
    # wrong number of classes
    pb.with_suffix(".json").write_text(json.dumps(head_meta(["x", "y"])))
    with pytest.raises(MirkitError) as err:
        models.HeadModel(str(pb))
    assert "2 classes" in str(err.value) and "3 columns" in str(err.value)
    # invalid JSON
    pb.with_suffix(".json").write_text("{not json")
    with pytest.raises(MirkitError) as err:
        models.HeadModel(str(pb))
    assert "metadata" in str(err.value)


def test_head_vs_audio_model_confusion(zoo):
    with pytest.raises(MirkitError, match="extract --model"):
        models.HeadModel(zoo["musicnn"])
    with pytest.raises(MirkitError, match="classify -m"):
        models.AudioModel(zoo["head"])


# --- graphs: rank relaxation, fixed batch -------------------------------------------------

def test_rank_relaxation_and_patch_length(zoo):
    w, b = zoo["head_wb"]
    x = np.random.default_rng(2).standard_normal((7, 200)).astype(np.float32)
    out = Graph(zoo["head3d"], "flatten_in_input", ["dense_out"]).run(x, batch_size=3)[0]
    np.testing.assert_allclose(out, x @ w + b, atol=1e-5)
    # 64-frame patches into a [-1, 187, 96] MusiCNN graph (Essentia's C API allows it)
    g = Graph(zoo["musicnn"], "model/Placeholder", ["model/Sigmoid"])
    assert g.run(np.zeros((2, 64, 96), np.float32))[0].shape == (2, 5)


def test_fixed_batch_graph_padded(tmp_path):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4, 3], name="serving_default_melspectrogram")
        tf.reshape(x * 2.0, [4, 3], name="PartitionedCall")   # only works with batch 4
    path = save_graph(g, tmp_path / "fixed.pb")
    graph = Graph(path, "serving_default_melspectrogram", ["PartitionedCall:0"])
    assert graph.fixed_batch == 4
    data = np.arange(18, dtype=np.float32).reshape(6, 3)
    np.testing.assert_array_equal(graph.run(data)[0], data * 2)


# --- audio models and run_models ------------------------------------------------------------

def test_run_models_musicnn(zoo):
    out = run_models(zoo["audio"], SR, [zoo["musicnn"]])
    hl = out["highlevel"]["test-musicnn-1"]
    emb = np.array(out["embeddings"]["test-musicnn-1"])
    # the same pipeline by hand: resample, bands, patches, graph
    x16 = fe.resample(zoo["audio"], SR, 16000)
    patches = fe.patch(fe.musicnn_bands(x16), 187, 93)
    assert len(patches) == (fe.frame_count(len(x16), 256) - 187) // 93 + 1
    tags, ref_emb = Graph(zoo["musicnn"], "model/Placeholder",
                          ["model/Sigmoid", "model/dense/BiasAdd"]).run(patches)
    assert emb.shape == (len(patches), 200)
    np.testing.assert_allclose(emb, ref_emb, atol=1e-5)
    mean = tags.mean(axis=0)
    assert list(hl["all"]) == zoo["musicnn_classes"]
    np.testing.assert_allclose([hl["all"][c] for c in zoo["musicnn_classes"]], mean, atol=1e-6)
    assert hl["value"] == zoo["musicnn_classes"][int(np.argmax(mean))]
    assert hl["probability"] == pytest.approx(mean.max())
    json.dumps(out)  # plain types only


def test_short_audio_discard_and_repeat(zoo):
    short = zoo["audio"][:SR * 2]        # 2 s < one 187-frame patch (2.96 s)
    warnings = []
    out = run_models(short, SR, [zoo["musicnn"]], warn=warnings.append)
    assert out["highlevel"]["test-musicnn-1"] == {"value": None, "probability": None, "all": {}}
    assert out["embeddings"]["test-musicnn-1"] == []
    assert warnings and "shorter than one patch" in warnings[0]
    out = run_models(short, SR, [zoo["musicnn"]], last_patch="repeat")
    assert len(out["embeddings"]["test-musicnn-1"]) == 1
    assert out["highlevel"]["test-musicnn-1"]["value"] in zoo["musicnn_classes"]


def test_models_are_cached(zoo):
    a = models.load_audio_model(zoo["musicnn"])
    assert models.load_audio_model(zoo["musicnn"]) is a


def test_vggish_and_tempocnn_models(zoo):
    out = run_models(zoo["audio"], SR, [zoo["vggish"], zoo["tempo"]])
    x16 = fe.resample(zoo["audio"], SR, 16000)
    patches = fe.patch(fe.vggish_bands(x16), 96, 93)
    assert len(out["embeddings"]["tiny-vggish-1"]) == len(patches)
    assert out["highlevel"]["tiny-vggish-1"]["value"] in ("no", "yes")
    # 8 s at 11025 Hz has fewer than 256 frames: TempoCNN gives no patch (BPM 0, as Essentia)
    assert out["highlevel"]["tiny-tempocnn"]["bpm"] == 0.0
    long = np.tile(zoo["audio"], 4)                # 32 s: 691 frames -> 4 TempoCNN patches
    res = run_models(long, SR, [zoo["tempo"]])["highlevel"]["tiny-tempocnn"]
    n_frames = fe.frame_count(len(fe.resample(long, SR, 11025)), 512)
    assert len(res["local_bpm"]) == (n_frames - 256) // 128 + 1 == 4
    assert res["bpm"] in res["local_bpm"]
    assert res["value"] == str(int(res["bpm"]))


def test_tempo_majority_vote():
    scores = np.zeros((5, 256))
    for i, k in enumerate([90, 60, 60, 90, 10]):   # BPM 120, 90, 90, 120, 40
        scores[i, k] = 1.0
    # 120 and 90 tie at 2 votes; 90 reached 2 first (patch 3), so it wins (tensorflow.md §3.5)
    res = models.tempo_result(scores)
    assert res["bpm"] == 90.0 and res["local_bpm"] == [120.0, 90.0, 90.0, 120.0, 40.0]


# --- heads (classify) --------------------------------------------------------------------

def test_head_predicts_mean_over_patches(zoo):
    from mirkit.modelio import load_model
    head = load_model(zoo["head"])
    w, b = zoo["head_wb"]
    emb = np.random.default_rng(3).standard_normal((4, 200))
    record = {"metadata": {"id": "song.wav"}, "embeddings": {"test-musicnn-1": emb.tolist()}}
    res = head.predict(record)
    logits = emb @ w + b
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    mean = soft.mean(0)
    np.testing.assert_allclose([res["all"][c] for c in "xyz"], mean, atol=1e-5)
    assert res["value"] == "xyz"[int(np.argmax(mean))]
    assert head.name == "head-test-musicnn-1"
    json.dumps(head.describe())
    # predict_many: one good record, one without embeddings, one empty
    many = head.predict_many([record, {"metadata": {"id": "other.wav"}},
                              {"metadata": {"id": "s.wav"}, "embeddings": {"test-musicnn-1": []}}])
    assert many[0]["value"] == res["value"]
    assert isinstance(many[1], MirkitError)
    # audio shorter than one patch: extract wrote empty embeddings and an explicit empty
    # result; the head gives the same explicit empty result instead of failing the record
    assert many[2] == {"value": None, "probability": None, "all": {}}
    assert head.predict(
        {"metadata": {"id": "s.wav"}, "embeddings": {"test-musicnn-1": []}}) == many[2]


def test_head_missing_embeddings_says_which_extract(zoo):
    head = models.load_head(zoo["head"])
    with pytest.raises(MirkitError) as err:
        head.predict({"metadata": {"id": "song.wav"}, "highlevel": {}})
    msg = str(err.value)
    assert "song.wav" in msg and "embeddings.test-musicnn-1" in msg
    assert "extract --model test-musicnn-1" in msg
    with pytest.raises(MirkitError, match="expects 200"):
        head.predict({"embeddings": {"test-musicnn-1": [[1.0, 2.0]]}})


def test_extract_then_head(zoo):
    out = run_models(zoo["audio"], SR, [zoo["musicnn"]])
    record = {"metadata": {"id": "a"}, **out}
    res = models.load_head(zoo["head"]).predict(record)
    w, b = zoo["head_wb"]
    emb = np.array(out["embeddings"]["test-musicnn-1"])
    logits = emb @ w + b
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    assert res["probability"] == pytest.approx(soft.mean(0).max(), abs=1e-5)


# --- oracle: essentia-tensorflow on the same .pb files and audio ---------------------------



ORACLE = textwrap.dedent("""
    import json, sys
    import numpy as np
    try:
        import essentia
        essentia.log.warningActive = False
        import essentia.standard as es
    except ImportError:
        sys.exit(77)
    if not hasattr(es, "TensorflowPredictMusiCNN"):
        sys.exit(77)
    args = json.loads(sys.argv[1])
    x = np.load(args["audio"])
    x16 = es.Resample(inputSampleRate=args["sr"], outputSampleRate=16000, quality=4)(x)
    x11 = es.Resample(inputSampleRate=args["sr"], outputSampleRate=11025, quality=4)(x)
    out = {}
    m = args["musicnn"]
    out["tags"] = es.TensorflowPredictMusiCNN(graphFilename=m)(x16)
    out["emb"] = es.TensorflowPredictMusiCNN(graphFilename=m, output="model/dense/BiasAdd")(x16)
    out["repeat"] = es.TensorflowPredictMusiCNN(graphFilename=m, lastPatchMode="repeat")(x16)
    out["head"] = es.TensorflowPredict2D(graphFilename=args["head"], output="model/Softmax")(out["emb"])
    out["head3d"] = es.TensorflowPredict2D(graphFilename=args["head3d"], input="flatten_in_input",
                                           output="dense_out")(out["emb"])
    out["vggish"] = es.TensorflowPredictVGGish(graphFilename=args["vggish"])(x16)
    out["vggish_emb"] = es.TensorflowPredictVGGish(graphFilename=args["vggish"],
                                                   output="model/vggish/embeddings")(x16)
    x11l = np.tile(x11, 4)
    out["tempo"] = es.TensorflowPredictTempoCNN(graphFilename=args["tempo"])(x11l)
    out["x11l"] = x11l
    bpm, local, local_p = es.TempoCNN(graphFilename=args["tempo"])(x11l)
    out["tempo_bpm"], out["tempo_local"] = np.array([bpm]), np.array(local)
    out["effnet"] = es.TensorflowPredictEffnetDiscogs(graphFilename=args["effnet"],
                                                      output="PartitionedCall:0")(x16)
    out["effnet_emb"] = es.TensorflowPredictEffnetDiscogs(graphFilename=args["effnet"],
                                                          output="PartitionedCall:1")(x16)
    x16m = es.Resample(inputSampleRate=args["sr"], outputSampleRate=16000,
                       quality=4)(np.tile(x, 5))                     # 40 s
    for key in ("maest5", "maest30"):
        out[key] = es.TensorflowPredictMAEST(graphFilename=args[key])(x16m)
        out[key + "_emb"] = es.TensorflowPredictMAEST(graphFilename=args[key],
                                                      output="PartitionedCall/Identity_7")(x16m)
    out["maest5_repeat"] = es.TensorflowPredictMAEST(graphFilename=args["maest5"],
                                                     lastPatchMode="repeat")(x16m)
    # OpenL3: the official gist's recipe (Essentia algorithms + TensorflowPredict, squeeze off)
    x48 = es.Resample(inputSampleRate=args["sr"], outputSampleRate=48000,
                      quality=4)(x[:int(args["sr"] * 2.5)])
    w, s = es.Windowing(size=2048, normalized=False), es.Spectrum(size=2048)
    mb = es.MelBands(inputSize=1025, numberBands=128, sampleRate=48000, lowFrequencyBound=0,
                     highFrequencyBound=24000, warpingFormula="slaneyMel", weighting="linear",
                     normalize="unit_tri", type="magnitude", log=False)
    chunks = []
    for chunk in es.FrameGenerator(x48, frameSize=48000, hopSize=4800):
        m = np.array([mb(s(w(f))) for f in es.FrameGenerator(chunk, frameSize=2048, hopSize=242,
                                                             validFrameThresholdRatio=0.5)])
        db = 10 * np.log10(np.maximum(1e-10, m))
        chunks.append(np.maximum(db, db.max() - 80) - db.max())
    batch = np.ascontiguousarray(np.array(chunks)[:, None].transpose(0, 3, 2, 1), np.float32)
    pool = essentia.Pool()
    pool.set("melspectrogram", batch)
    out["openl3"] = es.TensorflowPredict(graphFilename=args["openl3"], inputs=["melspectrogram"],
                                         outputs=["embeddings"], squeeze=False)(pool)["embeddings"]
    np.savez(args["out"], **out)
""")


@pytest.fixture(scope="module")
def oracle(zoo):
    d = zoo["dir"]
    np.save(d / "audio.npy", zoo["audio"])
    args = {"audio": str(d / "audio.npy"), "sr": SR, "musicnn": zoo["musicnn"],
            "head": zoo["head"], "head3d": zoo["head3d"], "vggish": zoo["vggish"],
            "tempo": zoo["tempo"], "effnet": zoo["effnet"], "maest5": zoo["maest5"],
            "maest30": zoo["maest30"], "openl3": zoo["openl3"], "out": str(d / "oracle.npz")}
    script = d / "oracle.py"
    script.write_text(ORACLE)
    env = oracle_env()
    proc = subprocess.run([sys.executable, str(script), json.dumps(args)], capture_output=True,
                          env=env, timeout=300)
    if proc.returncode == 77:
        pytest.skip("essentia-tensorflow (oracle) not installed (set MIRKIT_ORACLE_PATH)")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return dict(np.load(d / "oracle.npz"))


def test_oracle_musicnn(zoo, oracle):
    out = run_models(zoo["audio"], SR, [zoo["musicnn"]])
    hl = out["highlevel"]["test-musicnn-1"]
    mean = oracle["tags"].mean(axis=0)
    assert max(abs(hl["all"][c] - m) for c, m in zip(zoo["musicnn_classes"], mean)) <= 1e-4
    emb = np.array(out["embeddings"]["test-musicnn-1"])
    assert emb.shape == oracle["emb"].shape
    assert np.abs(emb - oracle["emb"]).max() <= 1e-3
    rep = run_models(zoo["audio"], SR, [zoo["musicnn"]], last_patch="repeat")
    assert len(rep["embeddings"]["test-musicnn-1"]) == len(oracle["repeat"])
    rep_mean = oracle["repeat"].mean(axis=0)
    got = [rep["highlevel"]["test-musicnn-1"]["all"][c] for c in zoo["musicnn_classes"]]
    assert np.abs(np.array(got) - rep_mean).max() <= 1e-4


def test_oracle_heads(zoo, oracle):
    record = {"embeddings": {"test-musicnn-1": oracle["emb"].tolist()}}
    res = models.load_head(zoo["head"]).predict(record)
    assert np.abs(np.array([res["all"][c] for c in "xyz"]) - oracle["head"].mean(0)).max() <= 1e-4
    res = models.load_head(zoo["head3d"]).predict(record)
    assert np.abs(np.array([res["all"][c] for c in "pqr"])
                  - oracle["head3d"].mean(0)).max() <= 1e-4


def test_oracle_vggish_and_tempocnn(zoo, oracle):
    out = run_models(zoo["audio"], SR, [zoo["vggish"]])
    hl = out["highlevel"]["tiny-vggish-1"]
    assert np.abs(np.array([hl["all"]["no"], hl["all"]["yes"]])
                  - oracle["vggish"].mean(0)).max() <= 1e-4
    assert np.abs(np.array(out["embeddings"]["tiny-vggish-1"]) - oracle["vggish_emb"]).max() <= 1e-3
    model = models.load_audio_model(zoo["tempo"])
    pred, _ = model.run(oracle["x11l"])
    assert pred.shape == oracle["tempo"].shape
    assert np.abs(pred - oracle["tempo"]).max() <= 1e-4


def test_saved_model_head(tmp_path):
    module = tf.Module()
    module.w = tf.Variable(np.eye(3, dtype=np.float32) * 2)
    module.f = tf.function(lambda x: {"out": tf.nn.softmax(tf.matmul(x, module.w))},
                           input_signature=[tf.TensorSpec([None, 3], tf.float32,
                                                          name="model_Placeholder")])
    path = tmp_path / "sm-test-emb-1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
    meta = head_meta(["a", "b", "c"], emb="test-emb-1",
                     input_name="serving_default_model_Placeholder",
                     output="StatefulPartitionedCall:0")
    (tmp_path / "sm-test-emb-1.json").write_text(json.dumps(meta))
    from mirkit.modelio import load_model
    head = load_model(str(path))
    res = head.predict({"embeddings": {"test-emb-1": [[1.0, 0, 0], [1.0, 0, 0]]}})
    # softmax([2, 0, 0]) = e^2 / (e^2 + 2)
    assert res["value"] == "a"
    assert res["probability"] == pytest.approx(np.exp(2) / (np.exp(2) + 2), abs=1e-6)


def test_metadata_variants(tmp_path):
    # 2020 variant: no inference block, outputs described as "embeddings"/"logits"
    (tmp_path / "old-musicnn-1.json").write_text(json.dumps({
        "name": "old", "classes": ["a", "b"],
        "schema": {"inputs": [{"name": "model/Placeholder", "type": "float", "shape": [187, 96]}],
                   "outputs": [{"name": "model/Sigmoid", "op": "Sigmoid"},
                               {"name": "model/dense_1/BiasAdd", "description": "logits"},
                               {"name": "model/dense/BiasAdd", "description": "embeddings"}]}}))
    info = models.ModelInfo(str(tmp_path / "old-musicnn-1.pb"))
    assert (info.algorithm, info.predictions, info.embeddings) == (
        "TensorflowPredictMusiCNN", "model/Sigmoid", "model/dense/BiasAdd")
    assert info.sample_rate == 16000 and info.classes == ["a", "b"]
    # no .json at all: options stand in for it; the front end is guessed from the name
    info = models.ModelInfo(str(tmp_path / "deeptemp-k4-3.pb"))
    assert (info.front_end, info.input_name, info.predictions, info.sample_rate) == (
        "tempocnn", "input", "output", 11025)
    info = models.ModelInfo(str(tmp_path / "x.pb"), front_end="vggish", output="out")
    assert (info.front_end, info.predictions) == ("vggish", "out")
    info = models.ModelInfo(str(tmp_path / "h.pb"), embedding_model="msd-musicnn-1")
    assert info.front_end == "head" and info.embedding_model == "msd-musicnn-1"
    with pytest.raises(MirkitError, match="front end"):
        models.ModelInfo(str(tmp_path / "x.pb"), front_end="wavenet")


def test_convert_musicnn_checkpoint(tmp_path):
    """make models: the converted .pb equals the checkpoint's own TF1 graph (musicnn wheel)."""
    try:
        musicnn_dir = convert_musicnn.find_musicnn()
    except MirkitError:
        pytest.skip("musicnn package not installed (make models installs it)")
    pb = convert_musicnn.convert("msd-musicnn-1", musicnn_dir, str(tmp_path))
    meta = json.loads((tmp_path / "msd-musicnn-1.json").read_text())
    assert len(meta["classes"]) == 50 and meta["classes"][:3] == ["rock", "pop", "alternative"]
    assert meta["inference"] == {"sample_rate": 16000, "algorithm": "TensorflowPredictMusiCNN"}
    assert [o["output_purpose"] for o in meta["schema"]["outputs"]] == [
        "predictions", "", "embeddings"]
    tags_diff, emb_diff = convert_musicnn.verify_against_checkpoint("msd-musicnn-1", musicnn_dir,
                                                                    pb, n=2)
    assert tags_diff < 1e-5 and emb_diff < 1e-3
    model = models.AudioModel(pb)        # loads through the allow-list
    assert model.graph.output_names == ["model/Sigmoid", "model/dense/BiasAdd"]


def test_oracle_tempocnn_bpm(zoo, oracle):
    res = run_models(oracle["x11l"], 11025, [zoo["tempo"]])["highlevel"]["tiny-tempocnn"]
    assert res["local_bpm"] == oracle["tempo_local"].tolist()
    assert res["bpm"] == float(oracle["tempo_bpm"][0])


def test_oracle_effnet_fixed_batch(zoo, oracle):
    out = run_models(zoo["audio"], SR, [zoo["effnet"]])
    emb = np.array(out["embeddings"]["tiny-effnet-bs64-1"])
    x16 = fe.resample(zoo["audio"], SR, 16000)
    n = len(fe.patch(fe.musicnn_bands(x16), 128, 62))
    assert 0 < n < 64                           # one partly filled batch of 64
    assert emb.shape == oracle["effnet_emb"].shape == (n, 6)
    assert np.abs(emb - oracle["effnet_emb"]).max() <= 1e-3
    hl = out["highlevel"]["tiny-effnet-bs64-1"]
    assert np.abs(np.array([hl["all"][c] for c in "rst"])
                  - oracle["effnet"].mean(0)).max() <= 1e-4


def test_oracle_maest(zoo, oracle):
    """TensorflowPredictMAEST vs run_models on 40 s: MusiCNN bands normalised, patch/hop from
    the path (316/313 for discogs-maest-5s-*, else 1876/1875), batch 1. Essentia returns
    [patches, 1, tokens, D] tensors; mirkit's embeddings are those rows flattened to
    [patches * tokens, D] (patch-major, as Essentia's TensorToVectorReal would emit them)."""
    long = np.tile(zoo["audio"], 5)
    out = run_models(long, SR, [zoo["maest5"], zoo["maest30"]], embeddings=True)
    x16 = fe.resample(long, SR, 16000)
    n_frames = fe.frame_count(len(x16), 256)                        # 2501
    for key, stem, size, hop in (("maest5", "discogs-maest-5s-pw-1", 316, 313),
                                 ("maest30", "tiny-maest-5s-1", 1876, 1875)):
        n = (n_frames - size) // hop + 1                             # 7 and 1 patches
        ref, ref_emb = oracle[key], oracle[key + "_emb"]
        assert ref.shape == (n, 1, 1, 3) and ref_emb.shape == (n, 1, 6, 8)
        model = models.load_audio_model(zoo[key], embeddings=True)
        assert (model.patch_size, model.patch_hop) == (size, hop)
        pred, emb = model.run(x16)
        assert np.abs(pred - ref.reshape(n, 3)).max() <= 1e-4
        assert np.abs(emb - ref_emb.reshape(n * 6, 8)).max() <= 1e-3
        hl = out["highlevel"][stem]
        classes = ["m0", "m1", "m2"] if key == "maest5" else ["0", "1", "2"]
        got = np.array([hl["all"][c] for c in classes])
        assert np.abs(got - ref.reshape(n, 3).mean(0)).max() <= 1e-4
        np.testing.assert_allclose(out["embeddings"][stem], emb, atol=1e-6)
    # lastPatchMode repeat: one more patch from the leftover frames repeated cyclically
    model = models.load_audio_model(zoo["maest5"], last_patch="repeat")
    pred, _ = model.run(x16)
    ref = oracle["maest5_repeat"]
    assert ref.shape == (8, 1, 1, 3) and pred.shape == (8, 3)
    assert np.abs(pred - ref.reshape(8, 3)).max() <= 1e-4


def test_openl3_like_model(tmp_path, zoo):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 128, 199, 1], name="melspectrogram")
        tf.reduce_mean(x, axis=[2, 3], name="embeddings")          # [B, 128]
    path = save_graph(g, tmp_path / "tiny-openl3-mel128.pb")         # no .json: name -> OpenL3
    out = run_models(zoo["audio"][:SR * 2], SR, [path])
    emb = np.array(out["embeddings"]["tiny-openl3-mel128"])
    x48 = fe.resample(zoo["audio"][:SR * 2], SR, 48000)
    ref = fe.openl3_patches(x48)[..., 0].mean(axis=2)
    assert emb.shape == (fe.frame_count(len(x48), 4800), 128) == ref.shape
    np.testing.assert_allclose(emb, ref, atol=1e-4)
    assert out["highlevel"] == {}


def test_oracle_openl3(zoo, oracle):
    """OpenL3 has no Essentia algorithm: the oracle is the official gist's recipe (Essentia's
    Resample, FrameGenerator, Windowing, Spectrum, MelBands, then TensorflowPredict with
    squeeze off) on 2.5 s; mirkit's run_models on the same audio (measured 2.3e-5)."""
    out = run_models(zoo["audio"][:int(SR * 2.5)], SR, [zoo["openl3"]])
    emb = np.array(out["embeddings"]["tiny-openl3-mel128"])
    ref = np.asarray(oracle["openl3"])
    assert ref.shape == (27, 1, 1, 6) and emb.shape == (27, 6)     # 2.5 s / 0.1 s hop + 1
    assert np.abs(emb - ref.reshape(emb.shape)).max() <= 1e-4


def test_musicnn_fast_graph_equals_original_layer_order(tmp_path):
    # the converter pools before ReLU/BN (with negated kernels where the BN scale is < 0)
    vars_ = musicnn_variables(seed=4)
    fast = save_graph(convert_musicnn.build_graph(vars_, 5), tmp_path / "fast.pb")
    slow = save_graph(convert_musicnn.build_graph(vars_, 5, fast=False), tmp_path / "slow.pb")
    x = np.random.default_rng(4).uniform(0, 4, (3, 187, 96)).astype(np.float32)
    outs = ["model/Sigmoid", "model/dense/BiasAdd"]
    a = Graph(fast, "model/Placeholder", outs).run(x)
    b = Graph(slow, "model/Placeholder", outs).run(x)
    assert np.abs(a[0] - b[0]).max() < 1e-6 and np.abs(a[1] - b[1]).max() < 1e-4


# --- the command line: extract --model | classify -m head ---------------------------------

def test_cli_extract_models_only_then_classify_head(zoo, tmp_path, run_tool):
    import soundfile as sf

    wav = tmp_path / "tone.wav"
    sf.write(str(wav), zoo["audio"], SR)
    res = run_tool("extract", "--descriptors", "none", "--model", zoo["musicnn"], "-f", "json", wav)
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    assert set(rec) == {"metadata", "highlevel", "embeddings"}
    assert "replay_gain" not in rec["metadata"]["audio_properties"]  # decoded once, no RG pass
    assert rec["metadata"]["audio_properties"]["length"] == pytest.approx(8.0)
    decoded, _ = sf.read(str(wav), dtype="float32")  # as written: 16-bit PCM
    direct = run_models(decoded, SR, [zoo["musicnn"]])
    assert rec["highlevel"]["test-musicnn-1"]["all"] == pytest.approx(
        direct["highlevel"]["test-musicnn-1"]["all"], abs=1e-6)
    res = run_tool("classify", "-m", zoo["head"], "-f", "json", input=res.stdout)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["highlevel"]) == {"test-musicnn-1", "head-test-musicnn-1"}
    assert set(out["highlevel"]["head-test-musicnn-1"]["all"]) == {"x", "y", "z"}


def test_cli_graph_options_for_models_without_json(zoo, tmp_path, run_tool):
    """--tf-* options name the nodes, classes and front end of graphs that have no .json."""
    import shutil

    import soundfile as sf

    wav = tmp_path / "tone.wav"
    sf.write(str(wav), zoo["audio"], SR, subtype="FLOAT")
    bare = tmp_path / "bare-vggish.pb"
    shutil.copy(zoo["vggish"], bare)
    with_json = run_tool("extract", "--descriptors", "none", "--model", zoo["vggish"],
                         "-f", "json", wav)
    assert with_json.returncode == 0, with_json.stderr
    res = run_tool("extract", "--descriptors", "none", "--model", bare, "-f", "json",
                   "--tf-front-end", "vggish", "--tf-input", "model/Placeholder",
                   "--tf-output", "model/Sigmoid", "--tf-classes", "no,yes",
                   "--tf-embeddings-output", "model/vggish/embeddings", wav)
    assert res.returncode == 0, res.stderr
    ref = json.loads(with_json.stdout)
    got = json.loads(res.stdout)
    assert got["highlevel"]["bare-vggish"] == ref["highlevel"]["tiny-vggish-1"]
    assert got["embeddings"]["bare-vggish"] == ref["embeddings"]["tiny-vggish-1"]

    head = tmp_path / "bare-head.pb"
    shutil.copy(zoo["head"], head)
    record = {"metadata": {"id": "r"}, **run_models(zoo["audio"], SR, [zoo["musicnn"]])}
    data = json.dumps(record).encode()
    res = run_tool("classify", "-m", head, "-f", "json", "--tf-input", "model/Placeholder",
                   "--tf-output", "model/Softmax", "--tf-classes", "x,y,z",
                   "--tf-embedding-model", "test-musicnn-1", input=data)
    assert res.returncode == 0, res.stderr
    ref = models.load_head(zoo["head"]).predict(record)
    assert json.loads(res.stdout)["highlevel"]["bare-head"]["all"] == pytest.approx(ref["all"])


def test_cli_describe_audio_model_and_head(zoo, run_tool):
    res = run_tool("classify", "--describe", zoo["musicnn"])
    assert res.returncode == 0, res.stderr
    desc = json.loads(res.stdout)
    assert desc["type"] == "tensorflow-audio-model" and desc["front_end"] == "musicnn"
    assert desc["classes"] == zoo["musicnn_classes"]
    res = run_tool("classify", "--describe", zoo["head"])
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["embedding_model"] == "test-musicnn-1"
    res = run_tool("classify", "--describe", zoo["evil"])
    assert res.returncode == 2 and b"ReadFile" in res.stderr
