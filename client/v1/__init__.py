"""Generated protobuf and gRPC stubs for modelctl.v1 (do not edit; run `make proto`)."""
