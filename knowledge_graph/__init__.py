"""The dataset as a typed graph, the CPR adjacency walk over it, and path explanations.

Schema (one `networkx.Graph`, built by `build_graph`; node ids are `(kind, key)` tuples)::

    ("user", user_id)            kind="user",      label="user <id>",   id=<user id>
    ("item", item_index)         kind="item",      label=<item title>,  id=<dataset item id>
    ("attribute", attr_index)    kind="attribute", label=<attr name>,   id=<dataset attr id>, group=<group>

    user  -- item       relation="interacts"      training split only
    user  -- user       relation="friend"         undirected, from User.friends
    user  -- attribute  relation="likes"          from User.liked_attributes
    item  -- attribute  relation="has_attribute"  from Item.attributes

Items and attributes are addressed by catalog index, as everywhere in `crs`. Each pair of node
kinds has a single relation, so a simple graph carries it; every item and attribute is a node even
when isolated.

`AttributeGraph` wraps a dataset: `reachable_attributes` is the per-turn walk on the catalog's
arrays, `reachable_attributes_nx` the same walk on networkx, and `explain` renders an `Explanation`.
"""

from knowledge_graph.graph import (
    RELATIONS,
    AttributeGraph,
    Explanation,
    NodeId,
    NodeKind,
    Relation,
    attribute_node,
    build_graph,
    item_node,
    neighbors,
    user_node,
)

__all__ = [
    "RELATIONS",
    "AttributeGraph",
    "Explanation",
    "NodeId",
    "NodeKind",
    "Relation",
    "attribute_node",
    "build_graph",
    "item_node",
    "neighbors",
    "user_node",
]
