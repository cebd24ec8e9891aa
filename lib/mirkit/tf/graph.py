"""Loading and running TensorFlow graphs (frozen GraphDef ``.pb`` or SavedModel directories).

TensorFlow is imported only by :func:`tf`, called from the functions that actually load or run
a model. Before any graph is imported, every op it contains (including the ops of its function
library, which PartitionedCall/If/While nodes call) is checked against :data:`ALLOWED_OPS`, a
list of pure math / neural-network / shape ops. Graphs with file, network, py_func, queue,
summary, print or any other op are refused unless ``allow_any_op=True`` (``--allow-any-op``,
unsafe: a graph is a program, and some ops read or write files or run Python).

The input placeholder is replaced at import time (``input_map``) by one of the same rank with
every dimension unknown, as Essentia's C API ignores the declared static shape
(tensorflow.md §0.6, §3.7 E). A placeholder with a fixed batch size (EffNet: 64) is fed batches
padded with zero patches, and the padding rows are dropped from the outputs.
"""

import os
import sys
import threading

import numpy as np

from ..errors import MirkitError

_TF = None
_TF_LOCK = threading.Lock()


def tf():
    """Import TensorFlow once (quietly) and return the module."""
    global _TF
    if _TF is None:
        with _TF_LOCK:
            if _TF is None:
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                # TensorFlow's C++ start-up chatter (absl, oneDNN notices) goes straight to
                # file descriptor 2: silence it during the import only
                saved = _silence_stderr()
                # TensorFlow eagerly imports Keras (and through it scikit-learn and scipy when
                # installed) at start-up; mirkit never uses Keras: skipping that eager import
                # saves 0.5 CPU s and 80 MiB per process (tf.keras still loads lazily if used)
                block = "keras" not in sys.modules and "keras.src.optimizers" not in sys.modules
                if block:
                    sys.modules["keras.src.optimizers"] = None
                try:
                    import tensorflow  # noqa: PLC0415
                except ImportError as exc:  # pragma: no cover - depends on the install
                    raise MirkitError(f"TensorFlow is not installed ({exc}); "
                                      "pip install tensorflow-cpu", "tensorflow") from exc
                finally:
                    if block:
                        sys.modules.pop("keras.src.optimizers", None)
                    _restore_stderr(saved)
                tensorflow.get_logger().setLevel("ERROR")
                _TF = tensorflow
    return _TF


def _silence_stderr():
    if os.environ.get("MIRKIT_TF_VERBOSE"):
        return None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return saved
    except (OSError, ValueError, AttributeError):
        return None


def _restore_stderr(saved):
    if saved is not None:
        os.dup2(saved, 2)
        os.close(saved)


# Pure computation ops: arithmetic, NN layers, shapes, control flow of frozen graphs, and
# calls into the (also checked) function library. Nothing here touches files, the network,
# the Python interpreter, queues, or global state beyond the running step.
ALLOWED_OPS = frozenset("""
Abs Acos Acosh Add AddN AddV2 All Any ArgMax ArgMin Asin Asinh Assert Atan Atan2 Atanh AvgPool
AvgPool3D BatchMatMul BatchMatMulV2 BatchMatMulV3 BatchNormWithGlobalNormalization BatchToSpaceND
BiasAdd BiasAddV1 Bitcast BroadcastArgs BroadcastGradientArgs BroadcastTo Cast Ceil CheckNumerics
ClipByValue Complex ComplexAbs Concat ConcatOffset ConcatV2 Const Conv1D Conv2D Conv3D Cos Cosh Cumprod
Cumsum DepthToSpace DepthwiseConv2dNative Dilation2D Div DivNoNan Einsum Elu Enter Equal Erf Erfc
Exit Exp ExpandDims Expm1 FFT FFT2D Fill Floor FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2
FusedBatchNormV3 FusedPadConv2D FusedResizeAndPadConv2D Gather GatherNd GatherV2 Gelu Greater
GreaterEqual IFFT IRFFT Identity IdentityN If Imag InvertPermutation IsFinite IsInf IsNan L2Loss
LRN LeakyRelu LeftShift Less LessEqual Lgamma LinSpace Log Log1p LogSoftmax LogicalAnd LogicalNot
LogicalOr LoopCond MatMul MatrixBandPart MatrixDiag MatrixDiagPart MatrixDiagV3 MatrixSetDiag
MatrixSetDiagV3 Max MaxPool MaxPool3D MaxPoolV2 MaxPoolWithArgmax Maximum Mean Merge Min Minimum
MirrorPad Mod Mul MulNoNan Neg NextIteration NoOp NotEqual OneHot OnesLike Pack Pad PadV2
PartitionedCall Placeholder PlaceholderWithDefault Pow PreventGradient Prod RFFT Range Rank Real
RealDiv Reciprocal Relu Relu6 Reshape ResizeBilinear ResizeNearestNeighbor Reverse ReverseV2
RightShift Rint Round Rsqrt ScatterNd Select SelectV2 Selu Shape ShapeN Sigmoid Sign Sin Sinh Size
Slice Snapshot Softmax Softplus Softsign SpaceToBatchND SpaceToDepth Split SplitV Sqrt Square
SquaredDifference Squeeze StatefulPartitionedCall StatelessIf StatelessWhile StopGradient
StridedSlice Sub Sum Switch Tan Tanh TensorScatterUpdate Tile TopKV2 Transpose Unpack Where While
Xdivy Xlog1py ZerosLike _FusedBatchNormEx _FusedConv2D _FusedMatMul _MklFusedBatchMatMulV2
""".split())

# Reading the model's own variables, only accepted inside SavedModels (they hold no constants).
SAVEDMODEL_EXTRA_OPS = frozenset("""
VarHandleOp ReadVariableOp VariableV2 Variable VarIsInitializedOp AssignVariableOp Assign
RestoreV2 SaveV2 MergeV2Checkpoints ShardedFilename StringJoin StaticRegexFullMatch DisableCopyOnRead
""".split())


def forbidden_ops(graph_def, allowed=ALLOWED_OPS):
    """Sorted list of the op types of ``graph_def`` (and its function library) not allowed."""
    ops = {node.op for node in graph_def.node}
    for func in graph_def.library.function:
        ops.update(node.op for node in func.node_def)
    # calls of library functions by name are fine: their bodies were checked above
    ops -= {f.signature.name for f in graph_def.library.function}
    return sorted(ops - allowed)


def check_ops(graph_def, source, allow_any_op=False, allowed=ALLOWED_OPS):
    if allow_any_op:
        return
    bad = forbidden_ops(graph_def, allowed)
    if bad:
        raise MirkitError(f"refusing to run a graph with non-allow-listed op(s) {', '.join(bad)} "
                          "(they may read or write files, use the network or run code); "
                          "--allow-any-op overrides this check (unsafe)", source)


def split_name(name):
    """'a/b:1' -> ('a/b', 1); 'a/b' -> ('a/b', 0)."""
    if ":" in name:
        op, _, idx = name.rpartition(":")
        if idx.isdigit():
            return op, int(idx)
    return name, 0


def tensor_name(name):
    op, idx = split_name(name)
    return f"{op}:{idx}"


def read_graph_def(path):
    """Parse a frozen GraphDef file; MirkitError for an unreadable or invalid file."""
    t = tf()
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise MirkitError(f"cannot read model: {exc.strerror or exc}", path) from exc
    graph_def = t.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except Exception as exc:  # protobuf DecodeError and friends
        raise MirkitError(f"not a TensorFlow frozen graph (GraphDef): {exc}", path) from exc
    if not graph_def.node:
        raise MirkitError("not a TensorFlow frozen graph (GraphDef): no nodes", path)
    return graph_def


def _node_list(names, limit=30):
    names = sorted(names)
    more = f" ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class Graph:
    """One loaded graph with one session, run on batches of patches.

    ``outputs`` is a list of tensor names (``name`` or ``name:k``). ``run(batch)`` returns a
    list of arrays (one per output), each with one row per input row (outputs of rank > 2 are
    flattened batch-major into rows of their last axis, as Essentia does).
    """

    def __init__(self, path, input_name, outputs, allow_any_op=False, threads=None,
                 batch_size=None, saved_model_tags=("serve",)):
        t = tf()
        self.path = path
        self.input_name = input_name
        self.output_names = list(outputs)
        self.batch_size = batch_size
        self.graph = t.Graph()
        config = t.compat.v1.ConfigProto(
            intra_op_parallelism_threads=int(threads or 0),
            inter_op_parallelism_threads=1 if threads else 0)
        if os.path.isdir(path):
            self._load_saved_model(path, saved_model_tags, allow_any_op, config)
        else:
            self._load_frozen(path, allow_any_op, config)

    # -- loading --------------------------------------------------------------------------

    def _load_frozen(self, path, allow_any_op, config):
        t = tf()
        graph_def = read_graph_def(path)
        check_ops(graph_def, path, allow_any_op)
        nodes = {n.name: n for n in graph_def.node}
        op_name, _ = split_name(self.input_name)
        if op_name not in nodes:
            raise MirkitError(f"input node {self.input_name!r} is not in the graph "
                              f"(placeholders: {_node_list(n.name for n in graph_def.node if n.op == 'Placeholder')})",
                              path)
        for out in self.output_names:
            if split_name(out)[0] not in nodes:
                raise MirkitError(f"output node {out!r} is not in the graph (nodes: "
                                  f"{_node_list(nodes)})", path)
        node = nodes[op_name]
        dims = None
        if "shape" in node.attr and not node.attr["shape"].shape.unknown_rank:
            dims = [d.size for d in node.attr["shape"].shape.dim]
        dtype = t.float32
        if "dtype" in node.attr:
            dtype = t.dtypes.as_dtype(node.attr["dtype"].type)
        if dtype != t.float32:
            raise MirkitError(f"input node {self.input_name!r} is {dtype.name}, not float", path)
        self.input_dims = dims
        with self.graph.as_default():
            shape = None if dims is None else [None] * len(dims)
            self._input = t.compat.v1.placeholder(t.float32, shape=shape, name="mirkit_input")
            try:
                self._outputs = t.compat.v1.import_graph_def(
                    graph_def, input_map={tensor_name(self.input_name): self._input},
                    return_elements=[tensor_name(o) for o in self.output_names], name="")
            except (ValueError, t.errors.OpError) as exc:
                raise MirkitError(f"cannot import the graph: {str(exc).splitlines()[0]}",
                                  path) from exc
        self.session = t.compat.v1.Session(graph=self.graph, config=config)

    def _load_saved_model(self, path, tags, allow_any_op, config):
        t = tf()
        from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415

        pb = os.path.join(path, "saved_model.pb")
        sm = saved_model_pb2.SavedModel()
        try:
            with open(pb, "rb") as fh:
                sm.ParseFromString(fh.read())
        except (OSError, Exception) as exc:
            raise MirkitError(f"not a readable SavedModel: {exc}", path) from exc
        metas = [m for m in sm.meta_graphs if set(tags) <= set(m.meta_info_def.tags)]
        if not metas:
            raise MirkitError(f"SavedModel has no meta graph tagged {', '.join(tags)}", path)
        check_ops(metas[0].graph_def, path, allow_any_op, ALLOWED_OPS | SAVEDMODEL_EXTRA_OPS)
        self.session = t.compat.v1.Session(graph=self.graph, config=config)
        with self.graph.as_default():
            try:
                t.compat.v1.saved_model.loader.load(self.session, list(tags), path)
            except Exception as exc:  # TF raises many kinds here
                raise MirkitError(f"cannot load the SavedModel: {str(exc).splitlines()[0]}",
                                  path) from exc
            try:
                self._input = self.graph.get_tensor_by_name(tensor_name(self.input_name))
                self._outputs = [self.graph.get_tensor_by_name(tensor_name(o))
                                 for o in self.output_names]
            except (KeyError, ValueError) as exc:
                names = [op.name for op in self.graph.get_operations()
                         if op.type in ("Placeholder", "PartitionedCall",
                                        "StatefulPartitionedCall")]
                raise MirkitError(f"{exc}; candidate nodes: {_node_list(names)}", path) from exc
        shape = self._input.shape
        self.input_dims = None if shape.rank is None else [
            -1 if d is None else int(d) for d in shape.as_list()]

    # -- properties -----------------------------------------------------------------------

    @property
    def input_rank(self):
        return None if self.input_dims is None else len(self.input_dims)

    @property
    def fixed_batch(self):
        """The declared batch size when the placeholder fixes it (EffNet: 64), else None."""
        if self.input_dims and self.input_dims[0] and self.input_dims[0] > 0:
            return int(self.input_dims[0])
        return None

    def output_width(self, index):
        """Static size of the last axis of output ``index`` (None when unknown)."""
        shape = self._outputs[index].shape
        if shape.rank is None or shape.rank == 0:
            return None
        return shape.as_list()[-1]

    # -- running --------------------------------------------------------------------------

    def _feed(self, batch):
        rank = self.input_rank
        if rank is not None:
            while batch.ndim < rank:          # [B,200] -> [B,1,200] (heads), Essentia squeeze
                batch = batch[:, None]
            if batch.ndim > rank:
                squeezable = [a for a in range(1, batch.ndim) if batch.shape[a] == 1]
                batch = np.squeeze(batch, axis=tuple(squeezable[:batch.ndim - rank]))
        return batch

    def run(self, data, batch_size=None):
        """Run the graph over ``data`` ([N, ...] float32) in batches; list of [N', ...] arrays."""
        t = tf()
        data = np.asarray(data, dtype=np.float32)
        n = len(data)
        fixed = self.fixed_batch
        size = fixed or batch_size or self.batch_size or 64
        results = [[] for _ in self._outputs]
        for start in range(0, n, size):
            batch = data[start:start + size]
            real = len(batch)
            if fixed and real < fixed:      # fixed-batch graphs: pad with zero patches
                pad = np.zeros((fixed - real,) + batch.shape[1:], np.float32)
                batch = np.concatenate([batch, pad])
            try:
                outs = self.session.run(self._outputs, feed_dict={self._input: self._feed(batch)})
            except (t.errors.OpError, ValueError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MirkitError(f"running the model failed: {msg}", self.path) from exc
            for acc, out in zip(results, outs):
                out = np.asarray(out, dtype=np.float32)
                if out.ndim == 0:
                    out = out.reshape(1, 1)
                elif out.ndim == 1:
                    out = out[:, None] if len(out) == len(batch) else out[None, :]
                if fixed and real < fixed and len(out) == fixed:
                    out = out[:real]
                if out.ndim > 2:
                    out = out.reshape(-1, out.shape[-1])
                acc.append(out)
        return [np.concatenate(acc) if acc else np.zeros((0, self.output_width(i) or 0),
                                                         np.float32)
                for i, acc in enumerate(results)]

    def close(self):
        self.session.close()
