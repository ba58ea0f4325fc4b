"""A flota worker in Python: the wire protocol of docs/PROTOCOL.md, echo and OpenAI-compatible providers."""
