"""gRPC transport: servicers, proto conversion, error mapping, interceptors, server."""
