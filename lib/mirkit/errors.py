"""The one documented exception family of mirkit.

Every expected failure (bad input, bad model, bad option) raises a ``MirkitError``;
the command-line base prints it as ``progname: input: reason`` and goes on with the batch.
Anything else escaping a tool is a bug.
"""


class MirkitError(Exception):
    """An expected, user-facing failure. ``source`` names the input (file, record id)."""

    def __init__(self, reason, source=None):
        super().__init__(reason)
        self.reason = str(reason)
        self.source = source

    def __str__(self):
        if self.source is None:
            return self.reason
        return f"{self.source}: {self.reason}"


class StreamError(MirkitError):
    """A corrupt or truncated record stream; ``offset`` is the byte offset (or line) of the fault."""

    def __init__(self, reason, source=None, offset=None):
        super().__init__(reason, source)
        self.offset = offset


class MissingDescriptorsError(MirkitError):
    """A record lacks descriptors a model needs; ``names`` lists every missing one."""

    def __init__(self, names, source=None, model=None):
        self.names = list(names)
        self.model = model
        what = f"model {model} needs" if model else "missing"
        reason = f"{what} descriptor(s) not in the record: {', '.join(self.names)}"
        if model:
            reason = f"missing descriptor(s) needed by model {model}: {', '.join(self.names)}"
        super().__init__(reason, source)
