"""An independent JOSE implementation (jwcrypto, pinned in the Makefile) for the payload-crypto
interop tests.

    jose_interop.py encrypt JWK ALG ENC [CTY] < plaintext   -> compact JWE on stdout
    jose_interop.py decrypt JWK < compact                   -> {"header": {...}, "plaintext": "..."}

JWK is a JSON Web Key (RFC 7517) as a JSON string: {"kty":"oct","k":...,"kid":...} or an EC key.
"""

import json
import sys

from jwcrypto import jwe, jwk
from jwcrypto.common import json_encode


def main() -> int:
    cmd, key = sys.argv[1], jwk.JWK.from_json(sys.argv[2])
    data = sys.stdin.buffer.read()
    if cmd == "encrypt":
        alg, enc = sys.argv[3], sys.argv[4]
        header = {"alg": alg, "enc": enc}
        if key.get("kid"):
            header["kid"] = key.get("kid")
        if len(sys.argv) > 5:
            header["cty"] = sys.argv[5]
        token = jwe.JWE(data, protected=json_encode(header))
        # Encrypt to the public half of an EC key, as a client would.
        token.add_recipient(key if key.get("kty") == "oct" else jwk.JWK.from_json(key.export_public()))
        sys.stdout.write(token.serialize(compact=True))
        return 0
    if cmd == "decrypt":
        token = jwe.JWE()
        token.deserialize(data.decode().strip(), key=key)
        out = {"header": json.loads(token.objects["protected"]), "plaintext": token.payload.decode()}
        sys.stdout.write(json.dumps(out))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
