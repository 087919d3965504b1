"""crs: a conversational recommender system.

The core (types, state tracking, the conversation environment, settings, data, evaluation) is
imported without torch, chromadb or gradio: those are installed with crs but loaded only by the
parts that use them (the embedding retriever, the browser chat), as is the local language model.
"""

__version__ = "0.1.0"
