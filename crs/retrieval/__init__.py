"""Free-text retrieval: sentence embeddings of catalog items in a persistent chromadb index.

    from crs.retrieval import open_retriever
    retriever = open_retriever(dataset.catalog, dataset.name)     # builds once, then reuses
    retriever.rank("like Toy Story but scarier", k=10)            # [(item index, cosine), ...]
    retriever.nearest_attributes("scary", k=3)                    # [(attribute index, cosine), ...]
    open_retriever(catalog, name, chroma_url="http://HOST:PORT")  # the index on a shared chroma server
    belief_logits += retriever.text_log_likelihood(text)          # combine with a belief

Importing this package is cheap: torch, sentence-transformers and chromadb are imported only when
an index is opened or a text is embedded. See `store` for how an index (on disk or on a chroma
server) is verified, resumed and rebuilt, `server` for the server's URL and a local `chroma run`,
and `retriever` for scoring and the combination rule.
"""

from __future__ import annotations

from crs.retrieval.encoder import Encoder, MiniLmEncoder
from crs.retrieval.retriever import DEFAULT_TEMPERATURE, Retriever, index_folder, open_retriever
from crs.retrieval.server import StoreUnreachable
from crs.retrieval.store import BuildFailed, IndexUnusable
from crs.retrieval.text import item_text

__all__ = [
    "DEFAULT_TEMPERATURE",
    "BuildFailed",
    "Encoder",
    "IndexUnusable",
    "MiniLmEncoder",
    "Retriever",
    "StoreUnreachable",
    "index_folder",
    "item_text",
    "open_retriever",
]
