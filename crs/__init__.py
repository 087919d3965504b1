"""crs: a conversational recommender system.

The core (types, state tracking, engine, data, evaluation) needs only numpy and networkx;
embedding, chat and LLM parts load their heavy dependencies lazily.
"""

__version__ = "0.1.0"
