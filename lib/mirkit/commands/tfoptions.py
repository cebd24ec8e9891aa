"""Command-line options naming a TensorFlow graph's nodes when it has no ``.json`` metadata
(shared by extract and classify; with a ``.json`` the metadata is used)."""

FRONT_ENDS = ("musicnn", "vggish", "effnet", "maest", "tempocnn", "openl3")


def add_graph_arguments(parser, audio):
    """``--tf-input/--tf-output/--tf-classes`` (+ ``--tf-embeddings-output``/``--tf-front-end``
    for audio models, ``--tf-embedding-model`` for heads)."""
    group = parser.add_argument_group(
        "TensorFlow models without a .json (apply to every such model)")
    group.add_argument("--tf-input", metavar="NODE", help="the graph's input node")
    group.add_argument("--tf-output", metavar="NODE", help="the predictions output node")
    group.add_argument("--tf-classes", metavar="A,B,...",
                       help="comma-separated class names, in output column order")
    if audio:
        group.add_argument("--tf-embeddings-output", metavar="NODE",
                           help="the embeddings output node")
        group.add_argument("--tf-front-end", choices=FRONT_ENDS,
                           help="the input front end (default: guessed from the file name)")
    else:
        group.add_argument("--tf-embedding-model", metavar="NAME",
                           help="the embedding model whose embeddings.<NAME> the head reads")


def graph_options(args):
    """The loader keyword options given on the command line (None values left out)."""
    options = {
        "input": args.tf_input,
        "output": args.tf_output,
        "classes": [c.strip() for c in args.tf_classes.split(",")] if args.tf_classes else None,
        "embeddings_output": getattr(args, "tf_embeddings_output", None),
        "front_end": getattr(args, "tf_front_end", None),
        "embedding_model": getattr(args, "tf_embedding_model", None),
    }
    return {k: v for k, v in options.items() if v is not None}
