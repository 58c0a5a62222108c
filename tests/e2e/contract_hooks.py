"""schemathesis hooks of tests/e2e/contract.rs (loaded through SCHEMATHESIS_HOOKS).

Header values go out as Latin-1, so a generated `é` is the byte 0xE9: not UTF-8, and
Rocket 0.5 drops such a header before any of our code runs (it logs "contains invalid
UTF-8"). The server then sees no header at all and cannot refuse the value, which is
what the checks expect. Each non-ASCII header value is sent as its UTF-8 bytes instead:
the same characters, in the encoding the server reads. Nothing else changes.
"""

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if isinstance(value, str) and not value.isascii():
            case.headers[name] = value.encode("utf-8").decode("latin-1")
