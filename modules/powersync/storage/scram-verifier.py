#!/usr/bin/env python3
"""Print a PostgreSQL SCRAM-SHA-256 verifier for the password read on stdin.

`ALTER ROLE … PASSWORD '<verifier>'` stores it as is, so the password itself never reaches the server, its
log (log_statement, or the STATEMENT line of a failed ALTER) or pg_stat_activity. The verifier has the form
PostgreSQL writes itself (src/common/scram-common.c, RFC 5802/7677):
  SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
"""

import base64
import hashlib
import hmac
import os
import sys

# PostgreSQL's default scram_iterations.
ITERATIONS = 4096


def verifier(password: bytes, salt: bytes, iterations: int = ITERATIONS) -> str:
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def main() -> int:
    password = sys.stdin.buffer.read()
    if password.endswith(b"\n"):
        password = password[:-1]
    # SASLprep (RFC 4013), which the server applies to the password a client sends, leaves printable ASCII
    # unchanged; anything else could hash differently here and there, so refuse it.
    if not password or any(byte < 0x21 or byte > 0x7E for byte in password):
        print("scram-verifier: the password must be non-empty printable ASCII without spaces", file=sys.stderr)
        return 1
    print(verifier(password, os.urandom(16)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
