"""modelctl_server: the modelctl controller (gRPC servicers, domain engines, persistence)."""

__version__ = "0.1.0"
