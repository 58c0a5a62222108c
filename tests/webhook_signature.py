#!/usr/bin/env python3
"""Stripe's own webhook signing, for tests/api/webhooks.rs to cross-check ours.

    webhook_signature.py sign SECRET TIMESTAMP < body
        prints the Stripe-Signature header Stripe's library generates
    webhook_signature.py verify SECRET HEADER TOLERANCE < body
        exits 0 when Stripe's library accepts the header for the body, 1 otherwise

Exits 3 with a message when the `stripe` package is missing (the test then fails).
"""

import sys

try:
    import stripe
except ImportError:
    sys.stderr.write(
        "the Python package `stripe` is not installed; "
        "install it with `python3 -m pip install stripe`\n"
    )
    sys.exit(3)


def main():
    body = sys.stdin.buffer.read().decode("utf-8")
    mode = sys.argv[1]
    if mode == "sign":
        secret, timestamp = sys.argv[2], int(sys.argv[3])
        print(
            stripe.WebhookSignature.generate_signature_header(
                body, secret, timestamp=timestamp
            )
        )
    elif mode == "verify":
        secret, header, tolerance = sys.argv[2], sys.argv[3], int(sys.argv[4])
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
        except stripe.SignatureVerificationError as e:
            sys.stderr.write("refused by Stripe's library: %s\n" % e)
            sys.exit(1)
    else:
        sys.stderr.write("unknown mode %r\n" % mode)
        sys.exit(2)


if __name__ == "__main__":
    main()
