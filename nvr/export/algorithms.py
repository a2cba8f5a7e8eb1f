"""Signature algorithms of export files, and the DER ``AlgorithmIdentifier`` of ``sigC``.

The format's default (no ``sigC``) is RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 20,
trailer 0xBC. A ``sigC`` box names anything else (RFC 4055 / RFC 5758 identifiers): we verify
RSASSA-PSS with other parameters, RSA PKCS#1 v1.5 and ECDSA with SHA-2, and can sign with the
RSA ones (their signatures have a fixed length, which the zero-filled ``sibo`` needs).
The signature is over the SHA-2 digest of the prepared file (hash-then-sign), so the file is
hashed once in a stream and never held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from nvr.export.der import (
    DerError,
    DerReader,
    encode_oid,
    integer,
    null,
    oid_text,
    sequence,
    tagged,
)

OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_RSA_SHA = {
    "1.2.840.113549.1.1.11": "SHA256",
    "1.2.840.113549.1.1.12": "SHA384",
    "1.2.840.113549.1.1.13": "SHA512",
}
OID_ECDSA_SHA = {
    "1.2.840.10045.4.3.2": "SHA256",
    "1.2.840.10045.4.3.3": "SHA384",
    "1.2.840.10045.4.3.4": "SHA512",
}
OID_HASH = {
    "1.3.14.3.2.26": "SHA1",
    "2.16.840.1.101.3.4.2.1": "SHA256",
    "2.16.840.1.101.3.4.2.2": "SHA384",
    "2.16.840.1.101.3.4.2.3": "SHA512",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


class UnsupportedAlgorithm(ValueError):
    """A ``sigC`` names an algorithm or parameters we cannot verify."""


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    """One signature scheme: ``kind`` is ``pss``, ``pkcs1`` or ``ecdsa``."""

    kind: str
    hash_name: str = "SHA256"
    mgf_hash_name: str = "SHA256"
    salt_length: int = 20

    @property
    def hash(self) -> hashes.HashAlgorithm:
        return _HASHES[self.hash_name]()

    @property
    def is_default(self) -> bool:
        return self == DEFAULT

    def describe(self) -> str:
        if self.kind == "pss":
            return (
                f"RSASSA-PSS {self.hash_name} (MGF1-{self.mgf_hash_name}, salt {self.salt_length})"
            )
        return f"{'RSA PKCS#1 v1.5' if self.kind == 'pkcs1' else 'ECDSA'} {self.hash_name}"

    def _padding(self) -> padding.AsymmetricPadding:
        if self.kind == "pss":
            mgf = padding.MGF1(_HASHES[self.mgf_hash_name]())
            return padding.PSS(mgf=mgf, salt_length=self.salt_length)
        return padding.PKCS1v15()

    def signature_size(self, key: rsa.RSAPrivateKey) -> int:
        """Bytes to reserve in ``sibo``: RSA signatures are exactly the modulus length."""
        return (key.key_size + 7) // 8

    def sign(self, key: rsa.RSAPrivateKey, digest: bytes) -> bytes:
        if self.kind == "ecdsa" or not isinstance(key, rsa.RSAPrivateKey):
            raise UnsupportedAlgorithm("signing export files needs an RSA key")
        return key.sign(digest, self._padding(), Prehashed(self.hash))

    def verify(self, key: PublicKey, signature: bytes, digest: bytes) -> bool:
        """True if ``signature`` is valid for ``digest`` under ``key``."""
        try:
            if self.kind == "ecdsa":
                if not isinstance(key, ec.EllipticCurvePublicKey):
                    return False
                key.verify(signature, digest, ec.ECDSA(Prehashed(self.hash)))
            else:
                if not isinstance(key, rsa.RSAPublicKey):
                    return False
                key.verify(signature, digest, self._padding(), Prehashed(self.hash))
        except InvalidSignature:
            return False
        return True

    def der(self) -> bytes:
        """The DER ``AlgorithmIdentifier`` for ``sigC``."""
        if self.kind == "pkcs1":
            oid = _reverse(OID_RSA_SHA, self.hash_name)
            return sequence(encode_oid(oid), null())
        if self.kind == "ecdsa":
            return sequence(encode_oid(_reverse(OID_ECDSA_SHA, self.hash_name)))
        hash_id = sequence(encode_oid(_reverse(OID_HASH, self.hash_name)), null())
        mgf_hash = sequence(encode_oid(_reverse(OID_HASH, self.mgf_hash_name)), null())
        params = sequence(
            tagged(0, hash_id),
            tagged(1, sequence(encode_oid(OID_MGF1), mgf_hash)),
            tagged(2, integer(self.salt_length)),
        )
        return sequence(encode_oid(OID_RSASSA_PSS), params)


DEFAULT = SignatureAlgorithm("pss")
"""RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 20, trailer 0xBC: no ``sigC`` needed."""


def _reverse(table: dict[str, str], name: str) -> str:
    for oid, value in table.items():
        if value == name:
            return oid
    raise UnsupportedAlgorithm(f"no identifier for {name}")


def _hash_id(reader: DerReader) -> str:
    """A hash AlgorithmIdentifier (parameters NULL or absent) to its name."""
    inner = reader.sequence()
    oid = oid_text(inner.oid())
    if oid not in OID_HASH:
        raise UnsupportedAlgorithm(f"unsupported hash algorithm {oid}")
    return OID_HASH[oid]


def parse_sigc(der: bytes) -> SignatureAlgorithm:
    """The algorithm a ``sigC`` payload names; :class:`UnsupportedAlgorithm` otherwise."""
    try:
        outer = DerReader(der).sequence_only()
        oid = oid_text(outer.oid())
        if oid in OID_RSA_SHA:
            return SignatureAlgorithm("pkcs1", OID_RSA_SHA[oid])
        if oid in OID_ECDSA_SHA:
            return SignatureAlgorithm("ecdsa", OID_ECDSA_SHA[oid])
        if oid != OID_RSASSA_PSS:
            raise UnsupportedAlgorithm(f"unsupported signature algorithm {oid}")
        # RFC 4055 defaults: SHA-1, MGF1-SHA-1, salt 20, trailer 1 (= 0xBC).
        hash_name = mgf_name = "SHA1"
        salt, trailer = 20, 1
        if not outer.at_end():
            params = outer.sequence()
            while not params.at_end():
                tag, field = params.context()
                if tag == 0:
                    hash_name = _hash_id(field)
                elif tag == 1:
                    mgf = field.sequence()
                    if oid_text(mgf.oid()) != OID_MGF1:
                        raise UnsupportedAlgorithm("PSS mask generation other than MGF1")
                    mgf_name = _hash_id(mgf)
                elif tag == 2:
                    salt = field.integer()
                elif tag == 3:
                    trailer = field.integer()
        if trailer != 1:
            raise UnsupportedAlgorithm(f"PSS trailer field {trailer} (only 1 = 0xBC)")
        return SignatureAlgorithm("pss", hash_name, mgf_name, salt)
    except DerError as exc:
        raise UnsupportedAlgorithm(f"sigC is not a valid DER AlgorithmIdentifier: {exc}") from None
