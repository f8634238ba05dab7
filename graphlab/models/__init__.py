"""Complete models, as a config's ``model.init_args.model.class_path`` names them."""

from graphlab.models.gnn import GCN, GIN, GraphSAGE, LinkGNN

__all__ = ["GCN", "GIN", "GraphSAGE", "LinkGNN"]
