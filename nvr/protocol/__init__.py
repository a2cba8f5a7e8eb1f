"""Sans-IO protocol code: parsers and serialisers with no sockets and no asyncio."""
