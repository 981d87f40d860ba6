"""Schemathesis hooks for pipewright's documents (loaded through SCHEMATHESIS_HOOKS).

A plugin version's upload is a component, `application/wasm`: Schemathesis has no serializer
for that media type, so its bytes are sent as they are (any bytes: the server must refuse what
is not a component with its documented 400).
"""

import schemathesis


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode()
