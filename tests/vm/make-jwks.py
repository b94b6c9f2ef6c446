# Builds the test's JWT signing material at build time: an ES256 (P-256) key, the kind Supabase's asymmetric
# signing keys are, and the JWKS that publishes its public half.
#   python3 make-jwks.py OUT   ->  OUT/key.pem, OUT/public/jwks.json
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

out = sys.argv[1]
os.makedirs(os.path.join(out, "public"))
key = ec.generate_private_key(ec.SECP256R1())
with open(os.path.join(out, "key.pem"), "wb") as pem:
    pem.write(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
jwk.update(kid="test-key", alg="ES256", use="sig")
with open(os.path.join(out, "public", "jwks.json"), "w") as jwks:
    json.dump({"keys": [jwk]}, jwks)
