"""The gRPC edge: dpservice's wire contract in, table operations out."""
