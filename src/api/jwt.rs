//! Access tokens: compact JWS/JWT signed with Ed25519 (RFC 7519, RFC 8037
//! `EdDSA`, RFC 9068 `at+jwt`, RFC 8705 `cnf.x5t#S256`).
//!
//! This module owns the token format and its rules: the exact form of the
//! tokens we issue, the strict validation of tokens that arrive from the
//! network, the certificate thumbprint that binds a token to a client
//! certificate, and the JWKS document that publishes the verification keys.
//!
//! Signing and signature verification are `jsonwebtoken`'s ([`crypto::sign`],
//! [`crypto::verify`]); this module is the strict wrapper around them. Tokens
//! never go through `jsonwebtoken::decode`: the algorithm is fixed here, not
//! read from the token, and the crate's claim `Validation` is looser than our
//! rules in each respect listed at [`validate`].
//!
//! Validation is ordered so that nothing expensive or ambiguous happens on
//! untrusted bytes: the length is bounded before decoding, the header is
//! checked (algorithm, forbidden parameters, `typ`, `kid`) before any
//! signature work, and the payload JSON is only parsed after the signature
//! has verified.

use std::fmt;

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::crypto::{self, CryptoProvider, rust_crypto};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// Largest token, in bytes, that [`validate`] will look at. Our own tokens
/// are well under 1 KiB; the bound keeps decoding and JSON parsing of
/// hostile input cheap.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Largest clock-skew allowance [`validate`] honours, whatever the caller
/// asks for: a generous leeway would quietly extend the life of stolen
/// tokens.
pub const MAX_LEEWAY_SECS: i64 = 30;

/// The only signature algorithm accepted, compared byte for byte.
const ALG: &str = "EdDSA";

/// The media type written into `typ` (RFC 9068 §2.1).
const TYP: &str = "at+jwt";

/// Header parameters we never honour. Each one would let the token itself
/// choose or supply the key it is checked against (or demand extensions we
/// do not implement), so their mere presence marks the token as hostile.
const FORBIDDEN_HEADER_PARAMS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// base64url without padding: the engine `jsonwebtoken` itself encodes and
/// decodes with. It refuses padding, the standard alphabet and non-zero
/// trailing bits, so every byte string has exactly one accepted encoding and
/// a token cannot be re-encoded into a different-looking but equally valid
/// one (which would defeat replay caches keyed on the text).
const B64: GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: who minted the token; must equal [`Validation::issuer`].
    pub iss: String,
    /// Audience: the API the token is for. Tokens may carry an array; after
    /// validation this holds the audience that matched.
    pub aud: String,
    /// Subject: the client the token was issued to; never empty.
    pub sub: String,
    /// Space-separated scopes, e.g. `"port:11320102471049746T:read reports:read"`.
    pub scope: String,
    /// Issued-at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not-before, seconds since the epoch, if the issuer set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id, so a token can be revoked or its replay detected.
    pub jti: String,
    /// Proof-of-possession binding to a client certificate (RFC 8705).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The RFC 8705 confirmation claim binding a token to a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// base64url (no padding) SHA-256 of the client certificate DER; see
    /// [`x5t_s256`].
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

impl Claims {
    /// The individual scopes. Empty items (from doubled spaces) are skipped
    /// so they can never match anything.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the token grants exactly `scope` (no prefix or wildcard
    /// matching: authorisation must be explicit).
    pub fn has_scope(&self, scope: &str) -> bool {
        !scope.is_empty() && self.scopes().any(|s| s == scope)
    }
}

/// What validation requires.
#[derive(Debug, Clone, Copy)]
pub struct Validation<'a> {
    /// The only accepted `iss`.
    pub issuer: &'a str,
    /// The audience that `aud` (string or array) must contain.
    pub audience: &'a str,
    /// Current time, seconds since the epoch (passed in so tests control time).
    pub now: i64,
    /// Clock-skew allowance; clamped to `0..=`[`MAX_LEEWAY_SECS`].
    pub leeway_secs: i64,
    /// Upper bound on `exp - iat` (900 in production).
    pub max_lifetime_secs: i64,
    /// Known verification keys by `kid`, matched exactly.
    pub keys: &'a [(String, VerifyingKey)],
}

/// Why a token was refused (or could not be produced). The API answers every
/// refusal with the same 401; the variants exist for logs and tests. The
/// messages never echo token content, so hostile bytes cannot reach logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token exceeds [`MAX_TOKEN_BYTES`].
    #[error("token is {len} bytes, over the 8 KiB limit")]
    TooLong {
        /// Length of the refused token in bytes.
        len: usize,
    },
    /// The token is not three dot-separated parts.
    #[error("token must have exactly three dot-separated parts")]
    PartCount,
    /// A part is not canonical unpadded base64url.
    #[error("token {0} is not canonical unpadded base64url")]
    Base64(&'static str),
    /// The header or payload is not a JSON object.
    #[error("token {0} is not a JSON object")]
    NotJsonObject(&'static str),
    /// The header or payload repeats a member name, which JSON parsers
    /// resolve differently.
    #[error("token {0} repeats a member name")]
    DuplicateMember(&'static str),
    /// `alg` is missing or not exactly `"EdDSA"`.
    #[error("header alg must be exactly \"EdDSA\"")]
    Algorithm,
    /// The header carries a parameter we never honour.
    #[error("header parameter {0} is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header has no `typ`.
    #[error("header typ is missing")]
    MissingType,
    /// `typ` is not `at+jwt` / `application/at+jwt`.
    #[error("header typ must be at+jwt")]
    WrongType,
    /// The header has no string `kid`.
    #[error("header kid is missing or not a string")]
    MissingKeyId,
    /// `kid` names none of the known keys.
    #[error("header kid names no known key")]
    UnknownKeyId,
    /// The signature is not 64 bytes (an empty one means it was stripped).
    #[error("signature must be 64 bytes, got {len}")]
    SignatureLength {
        /// Decoded length of the refused signature.
        len: usize,
    },
    /// The signature does not verify under the key named by `kid`.
    #[error("signature does not verify")]
    Signature,
    /// A required claim is absent.
    #[error("claim {0} is missing")]
    MissingClaim(&'static str),
    /// A time claim is not a JSON integer (strings and floats are refused).
    #[error("claim {0} must be a JSON integer")]
    NotInteger(&'static str),
    /// A claim has the wrong JSON type or shape.
    #[error("claim {0} has the wrong type or shape")]
    InvalidClaim(&'static str),
    /// `iss` is not the expected issuer.
    #[error("issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("audience does not include this API")]
    WrongAudience,
    /// `sub` is empty.
    #[error("subject is empty")]
    EmptySubject,
    /// `exp` is in the past, beyond the leeway.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iat` is in the future, beyond the leeway.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `exp` is not after `iat`.
    #[error("token expires before it was issued")]
    ExpiresBeforeIssued,
    /// `exp - iat` exceeds the allowed lifetime.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
    /// Signing failed to serialise the header or claims, or to sign.
    #[error("could not encode the token: {0}")]
    Encode(String),
}

/// The protected header we emit. A struct (not a map) fixes the member
/// order, so the header is byte-for-byte `{"alg":"EdDSA","kid":..,"typ":"at+jwt"}`
/// (`jsonwebtoken::Header` writes `typ` first).
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// Signs claims: header exactly `{"alg":"EdDSA","kid":<kid>,"typ":"at+jwt"}`;
/// base64url without padding; returns the compact JWS.
///
/// The signature is `jsonwebtoken`'s, from the key as PKCS#8 DER: the form
/// `EncodingKey::from_ed_der` requires (it refuses a raw 32-byte seed).
pub fn sign(claims: &Claims, kid: &str, key: &SigningKey) -> Result<String, JwtError> {
    let header = serde_json::to_vec(&Header {
        alg: ALG,
        kid,
        typ: TYP,
    })
    .map_err(encode_error)?;
    let payload = serde_json::to_vec(claims).map_err(encode_error)?;
    let mut token = B64.encode(header);
    token.push('.');
    B64.encode_string(payload, &mut token);
    // The DER is the private key: both it and the `EncodingKey` copy are
    // zeroised on drop.
    let der = key.to_pkcs8_der().map_err(encode_error)?;
    use_rust_crypto();
    let signature = crypto::sign(
        token.as_bytes(),
        &EncodingKey::from_ed_der(der.as_bytes()),
        Algorithm::EdDSA,
    )
    .map_err(encode_error)?;
    token.push('.');
    token.push_str(&signature);
    Ok(token)
}

/// Validates a compact token; returns the claims.
///
/// Checks, in order: size, shape, header (`alg` pinned to `EdDSA` before
/// any signature work, forbidden parameters, `typ`, `kid`), the Ed25519
/// signature, then the claims (types first, then `iss`, `aud`, `sub`, and
/// the time window with a leeway of at most [`MAX_LEEWAY_SECS`]).
///
/// The signature is checked by `jsonwebtoken` ([`crypto::verify`], with
/// `Algorithm::EdDSA` fixed here). Every other rule is this module's, as the
/// crate checks it more loosely or not at all:
/// - size cap, base64url per part (the crate's engine, but our errors name
///   the part), signature length: the crate has no cap;
/// - duplicate members: serde_json, and so the crate, keeps the last;
/// - `alg`: the crate reads it from the header and matches it to a list;
/// - `jku`/`x5u`/`jwk`/`x5c`/`crit`: the crate parses them and leaves them to
///   the caller (`crit` unenforced); `typ` and `kid` it does not check;
/// - claims: its `Validation` reads the system clock (we take `now`), rounds
///   float `exp`/`nbf` (we refuse them), accepts `exp == now - leeway`, does
///   not clamp the leeway (default 60 s), ignores `iat` and the lifetime,
///   allows an array `iss`, treats a mistyped `iss`/`sub`/`aud` (or a
///   non-string in `aud`) as absent, never requires a non-empty `sub`, and
///   knows no `cnf`.
pub fn validate(token: &str, v: &Validation<'_>) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLong { len: token.len() });
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::PartCount);
    };

    let header = parse_object(header_b64, "header")?;
    let key = check_header(&header, v.keys)?;

    // Decode (but do not yet parse) the payload so that a malformed part is
    // reported as such rather than as a signature failure; likewise a
    // stripped or HMAC-sized signature.
    let payload = decode(payload_b64, "payload")?;
    let len = decode(signature_b64, "signature")?.len();
    if len != 64 {
        return Err(JwtError::SignatureLength { len });
    }
    // The signing input is the original text of the first two parts, not a
    // re-encoding, so what is verified is exactly what was received.
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(JwtError::PartCount)?;
    verify_signature(signing_input, signature_b64, key)?;

    let claims = parse_json_object(&payload, "payload")?;
    check_claims(&claims, v)
}

/// base64url(SHA-256(der)) — the RFC 8705 certificate thumbprint.
pub fn x5t_s256(cert_der: &[u8]) -> String {
    B64.encode(Sha256::digest(cert_der))
}

/// The verification keys as a JWKS JSON document (RFC 8037 OKP keys):
/// `{"keys":[{"kty":"OKP","crv":"Ed25519","x":<b64url>,"kid":..,"alg":"EdDSA","use":"sig"}, ...]}`.
pub fn jwks(keys: &[(String, VerifyingKey)]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, key)| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": B64.encode(key.as_bytes()),
                "kid": kid,
                "alg": ALG,
                "use": "sig",
            })
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// Pins `jsonwebtoken` to its RustCrypto backend by name. Were feature
/// unification ever to enable `aws_lc_rs` as well, the crate's detection
/// would install a provider that panics on first use (on every API request);
/// and a build without `rust_crypto` fails to compile. After the first call
/// this is one atomic load.
fn use_rust_crypto() {
    // An `Err` only says a provider is already installed.
    let _ = CryptoProvider::install_default(&rust_crypto::DEFAULT_PROVIDER);
}

/// Checks `key`'s Ed25519 signature over `signing_input` with `jsonwebtoken`.
///
/// The key goes in as a JWK `x` through `DecodingKey::from_ed_components`,
/// the constructor documented for raw keys (`from_ed_der` wants raw bytes
/// too, despite its name: jsonwebtoken issues #362, #398). The crate uses
/// ed25519-dalek's `verify`, not `verify_strict`. Both refuse a non-canonical
/// `s`, so a signature still has one valid form; the difference, refusing
/// small-order keys and `R`, only matters for keys an attacker chooses, and
/// ours come from the keystore.
fn verify_signature(
    signing_input: &str,
    signature_b64: &str,
    key: &VerifyingKey,
) -> Result<(), JwtError> {
    let key = DecodingKey::from_ed_components(&B64.encode(key.as_bytes()))
        .map_err(|_| JwtError::Signature)?;
    use_rust_crypto();
    match crypto::verify(
        signature_b64,
        signing_input.as_bytes(),
        &key,
        Algorithm::EdDSA,
    ) {
        Ok(true) => Ok(()),
        // An `Err` (undecodable signature, key refused by the backend) is
        // ruled out by the checks before; either way the token is refused.
        Ok(false) | Err(_) => Err(JwtError::Signature),
    }
}

/// [`JwtError::Encode`] from whatever failed while producing a token.
fn encode_error(e: impl fmt::Display) -> JwtError {
    JwtError::Encode(e.to_string())
}

/// Decodes one part with the canonical engine.
fn decode(part: &str, which: &'static str) -> Result<Vec<u8>, JwtError> {
    B64.decode(part).map_err(|_| JwtError::Base64(which))
}

/// Decodes a part and parses it as a JSON object without duplicate members.
fn parse_object(part: &str, which: &'static str) -> Result<Map<String, Value>, JwtError> {
    parse_json_object(&decode(part, which)?, which)
}

/// Parses a JSON object, refusing duplicate top-level member names:
/// serde_json would silently keep the last one, while another parser (or a
/// log reader) might see the first, e.g. `{"alg":"none",...,"alg":"EdDSA"}`.
fn parse_json_object(bytes: &[u8], which: &'static str) -> Result<Map<String, Value>, JwtError> {
    let object: StrictObject =
        serde_json::from_slice(bytes).map_err(|_| JwtError::NotJsonObject(which))?;
    if object.duplicate {
        return Err(JwtError::DuplicateMember(which));
    }
    Ok(object.members)
}

/// A JSON object read member by member so that repeated names are noticed
/// (serde_json's own `Map` overwrites them).
struct StrictObject {
    members: Map<String, Value>,
    duplicate: bool,
}

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StrictObjectVisitor)
    }
}

struct StrictObjectVisitor;

impl<'de> Visitor<'de> for StrictObjectVisitor {
    type Value = StrictObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
        let mut members = Map::new();
        let mut duplicate = false;
        while let Some(name) = access.next_key::<String>()? {
            let value = access.next_value::<Value>()?;
            // Keep reading after a duplicate so the JSON is still fully
            // checked, but remember it: the caller refuses the whole token.
            if members.insert(name, value).is_some() {
                duplicate = true;
            }
        }
        Ok(StrictObject { members, duplicate })
    }
}

/// Checks the protected header and returns the key named by `kid`.
fn check_header<'k>(
    header: &Map<String, Value>,
    keys: &'k [(String, VerifyingKey)],
) -> Result<&'k VerifyingKey, JwtError> {
    // Pinned algorithm first: `none`, HMAC (keyed with our public key),
    // RSA/ECDSA and case variants all stop here, before any key lookup or
    // signature work.
    if header.get("alg").and_then(Value::as_str) != Some(ALG) {
        return Err(JwtError::Algorithm);
    }
    if let Some(param) = FORBIDDEN_HEADER_PARAMS
        .into_iter()
        .find(|p| header.contains_key(*p))
    {
        return Err(JwtError::ForbiddenHeader(param));
    }
    match header.get("typ") {
        None => return Err(JwtError::MissingType),
        Some(Value::String(typ))
            if typ.eq_ignore_ascii_case(TYP) || typ.eq_ignore_ascii_case("application/at+jwt") => {}
        Some(_) => return Err(JwtError::WrongType),
    }
    let Some(kid) = header.get("kid").and_then(Value::as_str) else {
        return Err(JwtError::MissingKeyId);
    };
    // Exact comparison only: a kid is a name, never a path or a pattern.
    keys.iter()
        .find(|(known, _)| known == kid)
        .map(|(_, key)| key)
        .ok_or(JwtError::UnknownKeyId)
}

/// A required string claim.
fn required_str<'m>(
    claims: &'m Map<String, Value>,
    name: &'static str,
) -> Result<&'m str, JwtError> {
    match claims.get(name) {
        None => Err(JwtError::MissingClaim(name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

/// An integer claim: JSON integers only. serde_json keeps `1.0` and `1e3`
/// as floats, so `as_i64` refuses them, as it refuses strings and integers
/// beyond `i64`.
fn integer(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or(JwtError::NotInteger(name)),
    }
}

/// A required integer claim.
fn required_int(claims: &Map<String, Value>, name: &'static str) -> Result<i64, JwtError> {
    integer(claims, name)?.ok_or(JwtError::MissingClaim(name))
}

/// Whether `aud` (a string or an array of strings) contains `audience`.
fn audience_matches(aud: &Value, audience: &str) -> Result<bool, JwtError> {
    match aud {
        Value::String(s) => Ok(s == audience),
        Value::Array(items) => {
            let mut found = false;
            for item in items {
                // Every element must be a string, even after a match, so a
                // malformed claim is never half-accepted.
                let s = item.as_str().ok_or(JwtError::InvalidClaim("aud"))?;
                found |= s == audience;
            }
            Ok(found)
        }
        _ => Err(JwtError::InvalidClaim("aud")),
    }
}

/// The `cnf` claim, if present: an object whose `x5t#S256` is a canonical
/// base64url SHA-256 digest. A malformed thumbprint is refused here rather
/// than left to fail a comparison later.
fn confirmation(claims: &Map<String, Value>) -> Result<Option<Confirmation>, JwtError> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let thumbprint = cnf
        .as_object()
        .and_then(|o| o.get("x5t#S256"))
        .and_then(Value::as_str)
        .ok_or(JwtError::InvalidClaim("cnf"))?;
    match B64.decode(thumbprint) {
        Ok(digest) if digest.len() == 32 => Ok(Some(Confirmation {
            x5t_s256: thumbprint.to_owned(),
        })),
        _ => Err(JwtError::InvalidClaim("cnf")),
    }
}

/// Checks the claims of a token whose signature has verified.
fn check_claims(claims: &Map<String, Value>, v: &Validation<'_>) -> Result<Claims, JwtError> {
    // Presence and types first, so a wrongly typed claim is reported as such
    // and never coerced.
    let iss = required_str(claims, "iss")?;
    let sub = required_str(claims, "sub")?;
    let aud = claims.get("aud").ok_or(JwtError::MissingClaim("aud"))?;
    let exp = required_int(claims, "exp")?;
    let iat = required_int(claims, "iat")?;
    let nbf = integer(claims, "nbf")?;
    let scope = required_str(claims, "scope")?;
    let jti = required_str(claims, "jti")?;
    let cnf = confirmation(claims)?;

    if iss != v.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if !audience_matches(aud, v.audience)? {
        return Err(JwtError::WrongAudience);
    }
    if sub.is_empty() {
        return Err(JwtError::EmptySubject);
    }

    let leeway = v.leeway_secs.clamp(0, MAX_LEEWAY_SECS);
    // Saturating arithmetic: hostile i64 extremes must not overflow.
    if exp <= v.now.saturating_sub(leeway) {
        return Err(JwtError::Expired);
    }
    let latest_start = v.now.saturating_add(leeway);
    if nbf.is_some_and(|nbf| nbf > latest_start) {
        return Err(JwtError::NotYetValid);
    }
    if iat > latest_start {
        return Err(JwtError::IssuedInFuture);
    }
    match exp.checked_sub(iat) {
        Some(lifetime) if lifetime <= 0 => return Err(JwtError::ExpiresBeforeIssued),
        Some(lifetime) if lifetime <= v.max_lifetime_secs => {}
        _ => return Err(JwtError::LifetimeTooLong),
    }

    Ok(Claims {
        iss: iss.to_owned(),
        // The audience that matched, so callers never see the array form.
        aud: v.audience.to_owned(),
        sub: sub.to_owned(),
        scope: scope.to_owned(),
        iat,
        exp,
        nbf,
        jti: jti.to_owned(),
        cnf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::alphabet;
    // Tokens built by hand are signed with ed25519-dalek directly, not with
    // the crate under test.
    use ed25519_dalek::Signer as _;
    use hmac::{Hmac, Mac};

    const ISS: &str = "https://gateway.example/issuer";
    const AUD: &str = "xianjie-api";
    const NOW: i64 = 1_700_000_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn keys() -> Vec<(String, VerifyingKey)> {
        vec![
            ("jwt-1".to_owned(), key(1).verifying_key()),
            ("jwt-2".to_owned(), key(2).verifying_key()),
        ]
    }

    fn validation(keys: &[(String, VerifyingKey)]) -> Validation<'_> {
        Validation {
            issuer: ISS,
            audience: AUD,
            now: NOW,
            leeway_secs: 30,
            max_lifetime_secs: 900,
            keys,
        }
    }

    fn claims() -> Claims {
        Claims {
            iss: ISS.to_owned(),
            aud: AUD.to_owned(),
            sub: "client-procuratorate-01".to_owned(),
            scope: "port:11320102471049746T:read reports:read".to_owned(),
            iat: NOW - 60,
            exp: NOW + 600,
            nbf: None,
            jti: "0f3c9a51-7d2e-4b8a-9e61-2f5d0c8b1a77".to_owned(),
            cnf: None,
        }
    }

    /// The standard header with the given kid.
    fn header(kid: &str) -> String {
        serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}).to_string()
    }

    /// The payload of `claims()` as a JSON object, for tampering.
    fn payload() -> Value {
        serde_json::to_value(claims()).unwrap()
    }

    /// Builds a token from arbitrary header and payload text, signed with
    /// Ed25519 by `key` — so a check that is missing would let it through.
    fn forge(header: &str, payload: &str, key: &SigningKey) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let sig = key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    /// A validly signed token (key jwt-1) carrying the given payload.
    fn with_payload(payload: &Value) -> String {
        forge(&header("jwt-1"), &payload.to_string(), &key(1))
    }

    fn check(token: &str) -> Result<Claims, JwtError> {
        let keys = keys();
        validate(token, &validation(&keys))
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    // --- round trips -------------------------------------------------------

    #[test]
    fn round_trip_without_cnf() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        assert_eq!(check(&token).unwrap(), claims());
    }

    #[test]
    fn round_trip_with_cnf_and_nbf() {
        let mut c = claims();
        c.nbf = Some(NOW - 60);
        c.cnf = Some(Confirmation {
            x5t_s256: x5t_s256(b"client certificate DER"),
        });
        let token = sign(&c, "jwt-2", &key(2)).unwrap();
        assert_eq!(check(&token).unwrap(), c);
    }

    #[test]
    fn sign_emits_exact_header_without_padding() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let p = parts(&token);
        assert_eq!(p.len(), 3);
        assert!(!token.contains('='));
        assert_eq!(
            B64.decode(&p[0]).unwrap(),
            br#"{"alg":"EdDSA","kid":"jwt-1","typ":"at+jwt"}"#
        );
        assert_eq!(B64.decode(&p[2]).unwrap().len(), 64);
        // No cnf/nbf members when absent.
        let body: Value = serde_json::from_slice(&B64.decode(&p[1]).unwrap()).unwrap();
        assert!(body.get("cnf").is_none() && body.get("nbf").is_none());
    }

    #[test]
    fn typ_is_case_insensitive_and_accepts_media_type() {
        for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
            let h = serde_json::json!({"alg": "EdDSA", "kid": "jwt-1", "typ": typ}).to_string();
            let token = forge(&h, &payload().to_string(), &key(1));
            assert_eq!(check(&token).unwrap(), claims(), "typ {typ}");
        }
    }

    #[test]
    fn audience_array_containing_us_is_accepted() {
        let mut p = payload();
        p["aud"] = serde_json::json!(["other-api", AUD]);
        assert_eq!(check(&with_payload(&p)).unwrap(), claims());
    }

    #[test]
    fn scopes_split_on_spaces_and_match_exactly() {
        let mut c = claims();
        c.scope = "a:read  reports:read ".to_owned();
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a:read", "reports:read"]);
        assert!(c.has_scope("reports:read"));
        assert!(!c.has_scope("reports"));
        assert!(!c.has_scope("a:read reports:read"));
        assert!(!c.has_scope(""));
    }

    // --- algorithm pinning ----------------------------------------------------

    #[test]
    fn alg_none_in_any_casing_is_refused_with_empty_signature() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = serde_json::json!({"alg": alg, "kid": "jwt-1", "typ": "at+jwt"}).to_string();
            let token = format!("{}.{}.", B64.encode(&h), B64.encode(payload().to_string()));
            assert_eq!(check(&token), Err(JwtError::Algorithm), "alg {alg}");
        }
    }

    #[test]
    fn alg_none_in_any_casing_is_refused_with_valid_signature() {
        // Signed for real, so only the alg pin can stop it.
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = serde_json::json!({"alg": alg, "kid": "jwt-1", "typ": "at+jwt"}).to_string();
            let token = forge(&h, &payload().to_string(), &key(1));
            assert_eq!(check(&token), Err(JwtError::Algorithm), "alg {alg}");
        }
    }

    #[test]
    fn hs256_keyed_with_public_key_is_refused() {
        let h = r#"{"alg":"HS256","kid":"jwt-1","typ":"at+jwt"}"#;
        let input = format!("{}.{}", B64.encode(h), B64.encode(payload().to_string()));
        let public = key(1).verifying_key();
        let mut mac = Hmac::<Sha256>::new_from_slice(public.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", B64.encode(mac.finalize().into_bytes()));
        assert_eq!(check(&token), Err(JwtError::Algorithm));

        // The same HMAC under an EdDSA header is simply a wrong-size signature.
        let input = format!(
            "{}.{}",
            B64.encode(header("jwt-1")),
            B64.encode(payload().to_string())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(public.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", B64.encode(mac.finalize().into_bytes()));
        assert_eq!(check(&token), Err(JwtError::SignatureLength { len: 32 }));
    }

    #[test]
    fn other_algorithms_and_case_variants_are_refused() {
        for alg in [
            Value::from("RS256"),
            Value::from("ES256"),
            Value::from("EdDsa"),
            Value::from("eddsa"),
            Value::from("EdDSA "),
            Value::from("Ed25519"),
            serde_json::json!(["EdDSA"]),
            Value::Null,
        ] {
            let h = serde_json::json!({"alg": alg, "kid": "jwt-1", "typ": "at+jwt"}).to_string();
            let token = forge(&h, &payload().to_string(), &key(1));
            assert_eq!(check(&token), Err(JwtError::Algorithm), "alg {alg}");
        }
        let token = forge(
            r#"{"kid":"jwt-1","typ":"at+jwt"}"#,
            &payload().to_string(),
            &key(1),
        );
        assert_eq!(check(&token), Err(JwtError::Algorithm));
    }

    #[test]
    fn duplicate_alg_in_header_is_refused() {
        // serde_json alone would keep the last alg and accept this token.
        let h = r#"{"alg":"none","kid":"jwt-1","typ":"at+jwt","alg":"EdDSA"}"#;
        let token = forge(h, &payload().to_string(), &key(1));
        assert_eq!(check(&token), Err(JwtError::DuplicateMember("header")));
    }

    #[test]
    fn duplicate_claim_in_payload_is_refused() {
        let mut body = payload().to_string();
        body.pop(); // drop the closing brace
        body.push_str(r#","sub":"someone-else"}"#);
        let token = forge(&header("jwt-1"), &body, &key(1));
        assert_eq!(check(&token), Err(JwtError::DuplicateMember("payload")));
    }

    // --- header parameters ------------------------------------------------------

    #[test]
    fn jku_header_is_refused() {
        let h = r#"{"alg":"EdDSA","kid":"jwt-1","typ":"at+jwt","jku":"https://evil.example/jwks"}"#;
        let token = forge(h, &payload().to_string(), &key(1));
        assert_eq!(check(&token), Err(JwtError::ForbiddenHeader("jku")));
    }

    #[test]
    fn embedded_jwk_header_is_refused() {
        // The attacker embeds their own key and signs with it.
        let attacker = key(66);
        let h = serde_json::json!({
            "alg": "EdDSA", "kid": "jwt-1", "typ": "at+jwt",
            "jwk": {"kty": "OKP", "crv": "Ed25519",
                    "x": B64.encode(attacker.verifying_key().as_bytes())},
        })
        .to_string();
        let token = forge(&h, &payload().to_string(), &attacker);
        assert_eq!(check(&token), Err(JwtError::ForbiddenHeader("jwk")));
    }

    #[test]
    fn x5u_x5c_crit_headers_are_refused() {
        for (param, value) in [
            ("x5u", serde_json::json!("https://evil.example/cert.pem")),
            ("x5c", serde_json::json!(["MIIB"])),
            ("crit", serde_json::json!(["exp"])),
        ] {
            let mut h = serde_json::json!({"alg": "EdDSA", "kid": "jwt-1", "typ": "at+jwt"});
            h[param] = value;
            let token = forge(&h.to_string(), &payload().to_string(), &key(1));
            assert_eq!(check(&token), Err(JwtError::ForbiddenHeader(param)));
        }
    }

    #[test]
    fn wrong_typ_is_refused() {
        for typ in [
            Value::from("JWT"),
            Value::from("at+jwt2"),
            Value::from(""),
            Value::from(1),
        ] {
            let h = serde_json::json!({"alg": "EdDSA", "kid": "jwt-1", "typ": typ}).to_string();
            let token = forge(&h, &payload().to_string(), &key(1));
            assert_eq!(check(&token), Err(JwtError::WrongType), "typ {typ}");
        }
    }

    #[test]
    fn missing_typ_is_refused() {
        let token = forge(
            r#"{"alg":"EdDSA","kid":"jwt-1"}"#,
            &payload().to_string(),
            &key(1),
        );
        assert_eq!(check(&token), Err(JwtError::MissingType));
    }

    #[test]
    fn missing_kid_is_refused() {
        for h in [
            r#"{"alg":"EdDSA","typ":"at+jwt"}"#,
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":1}"#,
        ] {
            let token = forge(h, &payload().to_string(), &key(1));
            assert_eq!(check(&token), Err(JwtError::MissingKeyId));
        }
    }

    #[test]
    fn unknown_kid_is_refused() {
        let token = forge(&header("jwt-3"), &payload().to_string(), &key(1));
        assert_eq!(check(&token), Err(JwtError::UnknownKeyId));
    }

    #[test]
    fn path_like_and_odd_kids_are_unknown() {
        let long = "a".repeat(200);
        for (kid, signer) in [
            ("../../etc/passwd", 1),
            ("jwt-1/../jwt-2", 2),
            ("./jwt-1", 1),
            ("jwt-1 ", 1),
            (" jwt-1", 1),
            ("JWT-1", 1),
            ("", 1),
            (long.as_str(), 1),
        ] {
            let token = forge(&header(kid), &payload().to_string(), &key(signer));
            assert_eq!(check(&token), Err(JwtError::UnknownKeyId), "kid {kid:?}");
        }
    }

    // --- signature ------------------------------------------------------------

    #[test]
    fn token_signed_by_another_key_with_known_kid_is_refused() {
        let token = sign(&claims(), "jwt-1", &key(99)).unwrap();
        assert_eq!(check(&token), Err(JwtError::Signature));
        // Nor may one known key stand in for another.
        let token = sign(&claims(), "jwt-1", &key(2)).unwrap();
        assert_eq!(check(&token), Err(JwtError::Signature));
    }

    #[test]
    fn stripped_signature_is_refused() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let p = parts(&token);
        let stripped = format!("{}.{}.", p[0], p[1]);
        assert_eq!(check(&stripped), Err(JwtError::SignatureLength { len: 0 }));
    }

    #[test]
    fn flipped_signature_bit_is_refused() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let p = parts(&token);
        for byte in [0, 31, 32, 63] {
            let mut sig = B64.decode(&p[2]).unwrap();
            sig[byte] ^= 0x01;
            let t = format!("{}.{}.{}", p[0], p[1], B64.encode(&sig));
            assert_eq!(check(&t), Err(JwtError::Signature), "byte {byte}");
        }
    }

    #[test]
    fn altered_payload_with_original_signature_is_refused() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let p = parts(&token);
        let mut widened = payload();
        widened["scope"] = Value::from("port:*:write admin");
        let t = format!("{}.{}.{}", p[0], B64.encode(widened.to_string()), p[2]);
        assert_eq!(check(&t), Err(JwtError::Signature));
    }

    // --- shape and encoding -----------------------------------------------------

    #[test]
    fn wrong_part_count_is_refused() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let p = parts(&token);
        assert_eq!(
            check(&format!("{}.{}", p[0], p[1])),
            Err(JwtError::PartCount)
        );
        assert_eq!(check(&format!("{token}.")), Err(JwtError::PartCount));
        assert_eq!(check(""), Err(JwtError::PartCount));
    }

    #[test]
    fn padding_in_any_part_is_refused() {
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let p = parts(&token);
        let padded = |s: &str| {
            let mut s = s.to_owned();
            while !s.len().is_multiple_of(4) {
                s.push('=');
            }
            s
        };
        // A 64-byte signature always needs "==", so this part certainly
        // differs from its unpadded form.
        assert_ne!(padded(&p[2]), p[2]);
        let t = format!("{}.{}.{}", p[0], p[1], padded(&p[2]));
        assert_eq!(check(&t), Err(JwtError::Base64("signature")));
        // The 44-byte header encodes to 59 characters, so it needs one "=".
        assert_ne!(padded(&p[0]), p[0]);
        let t = format!("{}.{}.{}", padded(&p[0]), p[1], p[2]);
        assert_eq!(check(&t), Err(JwtError::Base64("header")));
        // Force a padded payload whatever its length: two extra "=" are
        // never canonical.
        let t = format!("{}.{}==.{}", p[0], p[1], p[2]);
        assert_eq!(check(&t), Err(JwtError::Base64("payload")));
    }

    #[test]
    fn standard_alphabet_and_trailing_bits_are_refused() {
        // "_-8" is canonical base64url for ff ef; "/+8" is the same in the
        // standard alphabet; "_-9" has non-zero trailing bits.
        assert_eq!(B64.decode("_-8").unwrap(), [0xff, 0xef]);
        assert!(decode("/+8", "header").is_err());
        assert!(decode("_-9", "header").is_err());
        assert!(decode("AA AA", "header").is_err());

        // Find a token whose signature uses '-' or '_', so re-encoding it in
        // the standard alphabet certainly changes the text.
        let (token, p) = (0..)
            .map(|i| {
                let mut c = claims();
                c.jti = format!("jti-{i}");
                let token = sign(&c, "jwt-1", &key(1)).unwrap();
                let p = parts(&token);
                (token, p)
            })
            .find(|(_, p)| p[2].contains(['-', '_']))
            .unwrap();
        assert!(check(&token).is_ok());
        let std_sig =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(B64.decode(&p[2]).unwrap());
        assert_ne!(std_sig, p[2]);
        let t = format!("{}.{}.{std_sig}", p[0], p[1]);
        assert_eq!(check(&t), Err(JwtError::Base64("signature")));

        // Non-canonical trailing bits on the signature: 86 characters carry
        // 64 bytes plus 4 spare bits, which must be zero, so the last
        // character's alphabet index is a multiple of 16; setting its low bit
        // changes only the spare bits.
        let mut sig = p[2].clone();
        let last = sig.pop().unwrap();
        let idx = alphabet::URL_SAFE.as_str().find(last).unwrap();
        assert_eq!(idx % 16, 0);
        sig.push(char::from(alphabet::URL_SAFE.as_str().as_bytes()[idx | 1]));
        let t = format!("{}.{}.{sig}", p[0], p[1]);
        assert_eq!(check(&t), Err(JwtError::Base64("signature")));
    }

    #[test]
    fn non_object_header_or_payload_is_refused() {
        for h in ["[]", "\"EdDSA\"", "null", "{", r#"{"alg":"EdDSA"} x"#] {
            let token = forge(h, &payload().to_string(), &key(1));
            assert_eq!(check(&token), Err(JwtError::NotJsonObject("header")), "{h}");
        }
        for body in ["[1,2]", "42", "not json", ""] {
            let token = forge(&header("jwt-1"), body, &key(1));
            assert_eq!(
                check(&token),
                Err(JwtError::NotJsonObject("payload")),
                "{body}"
            );
        }
    }

    #[test]
    fn token_over_8_kib_is_refused_before_decoding() {
        let mut c = claims();
        c.scope = "reports:read ".repeat(700);
        let token = sign(&c, "jwt-1", &key(1)).unwrap();
        assert!(token.len() > MAX_TOKEN_BYTES);
        assert_eq!(check(&token), Err(JwtError::TooLong { len: token.len() }));
        // Garbage of that size is refused the same way, not parsed.
        let junk = "A".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(check(&junk), Err(JwtError::TooLong { len: junk.len() }));
        // Just under the limit is still looked at.
        let mut c = claims();
        c.scope = "r".repeat(5_000);
        let token = sign(&c, "jwt-1", &key(1)).unwrap();
        assert!(token.len() <= MAX_TOKEN_BYTES);
        assert_eq!(check(&token).unwrap(), c);
    }

    // --- claims -----------------------------------------------------------------

    #[test]
    fn expired_beyond_leeway_is_refused() {
        let mut p = payload();
        p["iat"] = Value::from(NOW - 600);
        p["exp"] = Value::from(NOW - 31);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::Expired));
        p["exp"] = Value::from(NOW - 30);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::Expired));
    }

    #[test]
    fn expired_within_leeway_is_accepted() {
        let mut p = payload();
        p["iat"] = Value::from(NOW - 600);
        p["exp"] = Value::from(NOW - 29);
        let c = check(&with_payload(&p)).unwrap();
        assert_eq!(c.exp, NOW - 29);
    }

    #[test]
    fn leeway_is_clamped_to_30_seconds() {
        let mut p = payload();
        p["iat"] = Value::from(NOW - 600);
        p["exp"] = Value::from(NOW - 60);
        let token = with_payload(&p);
        let keys = keys();
        let mut v = validation(&keys);
        v.leeway_secs = 3_600;
        assert_eq!(validate(&token, &v), Err(JwtError::Expired));
        // A negative leeway is treated as none, not as a shift of the clock.
        p["exp"] = Value::from(NOW + 1);
        let token = with_payload(&p);
        v.leeway_secs = -3_600;
        assert!(validate(&token, &v).is_ok());
    }

    #[test]
    fn nbf_in_future_beyond_leeway_is_refused() {
        let mut p = payload();
        p["nbf"] = Value::from(NOW + 31);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::NotYetValid));
        p["nbf"] = Value::from(NOW + 30);
        assert!(check(&with_payload(&p)).is_ok());
    }

    #[test]
    fn iat_in_future_is_refused() {
        let mut p = payload();
        p["iat"] = Value::from(NOW + 31);
        p["exp"] = Value::from(NOW + 600);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::IssuedInFuture));
    }

    #[test]
    fn lifetime_over_900_is_refused() {
        let mut p = payload();
        p["iat"] = Value::from(NOW);
        p["exp"] = Value::from(NOW + 901);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::LifetimeTooLong));
        p["exp"] = Value::from(NOW + 900);
        assert!(check(&with_payload(&p)).is_ok());
        // Extreme values must not overflow into acceptance.
        p["iat"] = Value::from(i64::MIN);
        p["exp"] = Value::from(i64::MAX);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::LifetimeTooLong));
    }

    #[test]
    fn exp_not_after_iat_is_refused() {
        let mut p = payload();
        p["iat"] = Value::from(NOW);
        p["exp"] = Value::from(NOW - 5);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::ExpiresBeforeIssued));
    }

    #[test]
    fn exp_as_string_is_refused() {
        let mut p = payload();
        p["exp"] = Value::from("9999999999");
        assert_eq!(check(&with_payload(&p)), Err(JwtError::NotInteger("exp")));
    }

    #[test]
    fn exp_as_float_is_refused() {
        // Written by hand: serde_json would print an f64 anyway, but this
        // pins the exact text an attacker would send.
        let mut body = payload();
        body["exp"] = Value::from(0);
        let text = body
            .to_string()
            .replace("\"exp\":0", &format!("\"exp\":{}.0", NOW + 600));
        assert!(text.contains(".0"));
        let token = forge(&header("jwt-1"), &text, &key(1));
        assert_eq!(check(&token), Err(JwtError::NotInteger("exp")));
        let mut p = payload();
        p["exp"] = Value::from(1.7e9);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::NotInteger("exp")));
    }

    #[test]
    fn iat_and_nbf_must_be_integers() {
        let mut p = payload();
        p["iat"] = Value::from("1700000000");
        assert_eq!(check(&with_payload(&p)), Err(JwtError::NotInteger("iat")));
        let mut p = payload();
        p["nbf"] = Value::from(1.5);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::NotInteger("nbf")));
        let mut p = payload();
        p["nbf"] = Value::Null;
        assert_eq!(check(&with_payload(&p)), Err(JwtError::NotInteger("nbf")));
    }

    #[test]
    fn required_claims_must_be_present() {
        for name in ["iss", "sub", "aud", "exp", "iat", "scope", "jti"] {
            let mut p = payload();
            p.as_object_mut().unwrap().remove(name);
            assert_eq!(
                check(&with_payload(&p)),
                Err(JwtError::MissingClaim(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn wrong_audience_string_is_refused() {
        let mut p = payload();
        p["aud"] = Value::from("other-api");
        assert_eq!(check(&with_payload(&p)), Err(JwtError::WrongAudience));
    }

    #[test]
    fn wrong_audience_array_is_refused() {
        let mut p = payload();
        p["aud"] = serde_json::json!(["other-api", "xianjie-api-2"]);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::WrongAudience));
        p["aud"] = serde_json::json!([]);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::WrongAudience));
        p["aud"] = serde_json::json!([AUD, 7]);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::InvalidClaim("aud")));
        p["aud"] = Value::from(7);
        assert_eq!(check(&with_payload(&p)), Err(JwtError::InvalidClaim("aud")));
    }

    #[test]
    fn wrong_issuer_is_refused() {
        for iss in [
            "https://evil.example/issuer",
            "https://gateway.example/issuer/",
            "",
        ] {
            let mut p = payload();
            p["iss"] = Value::from(iss);
            assert_eq!(
                check(&with_payload(&p)),
                Err(JwtError::WrongIssuer),
                "{iss}"
            );
        }
    }

    #[test]
    fn empty_subject_is_refused() {
        let mut p = payload();
        p["sub"] = Value::from("");
        assert_eq!(check(&with_payload(&p)), Err(JwtError::EmptySubject));
    }

    #[test]
    fn malformed_cnf_is_refused() {
        for cnf in [
            serde_json::json!("abc"),
            serde_json::json!({}),
            serde_json::json!({"x5t#S256": 5}),
            serde_json::json!({"x5t#S256": "not-a-digest"}),
            serde_json::json!({"x5t#S256": format!("{}=", x5t_s256(b"c"))}),
        ] {
            let mut p = payload();
            p["cnf"] = cnf.clone();
            assert_eq!(
                check(&with_payload(&p)),
                Err(JwtError::InvalidClaim("cnf")),
                "{cnf}"
            );
        }
    }

    // --- thumbprint and JWKS --------------------------------------------------------

    #[test]
    fn x5t_s256_matches_hand_computed_values() {
        // SHA-256("abc") = ba7816bf...f20015ad; standard base64
        // "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=" made url-safe, unpadded.
        assert_eq!(
            x5t_s256(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        // SHA-256("") = e3b0c442...7852b855.
        assert_eq!(x5t_s256(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
        let digest =
            hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap();
        assert_eq!(B64.decode(x5t_s256(b"abc")).unwrap(), digest);
    }

    #[test]
    fn jwks_has_rfc8037_shape_and_key_bytes() {
        let keys = keys();
        let doc = jwks(&keys);
        let list = doc["keys"].as_array().unwrap();
        assert_eq!(doc.as_object().unwrap().len(), 1);
        assert_eq!(list.len(), 2);
        for (jwk, (kid, key)) in list.iter().zip(&keys) {
            let obj = jwk.as_object().unwrap();
            assert_eq!(obj.len(), 6);
            assert_eq!(jwk["kty"], "OKP");
            assert_eq!(jwk["crv"], "Ed25519");
            assert_eq!(jwk["alg"], "EdDSA");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["kid"], kid.as_str());
            let x = jwk["x"].as_str().unwrap();
            assert!(!x.contains('='));
            assert_eq!(B64.decode(x).unwrap(), key.as_bytes());
        }
        assert_eq!(jwks(&[]), serde_json::json!({"keys": []}));
    }

    #[test]
    fn error_messages_do_not_echo_token_content() {
        let token = forge(&header("../../etc/passwd"), &payload().to_string(), &key(1));
        let err = check(&token).unwrap_err();
        assert!(!err.to_string().contains("passwd"));
    }

    #[test]
    fn signature_is_plain_ed25519_over_the_first_two_parts() {
        // Checked with ed25519-dalek directly, not with the crate that signed:
        // any RFC 8037 verifier must accept what we issue.
        let token = sign(&claims(), "jwt-1", &key(1)).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig: [u8; 64] = B64.decode(sig).unwrap().try_into().unwrap();
        let verified = key(1).verifying_key().verify_strict(
            input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        );
        assert!(verified.is_ok());
        // Signing is deterministic (RFC 8032), so it is exactly dalek's signature.
        assert_eq!(sig, key(1).sign(input.as_bytes()).to_bytes());
    }

    // --- timing --------------------------------------------------------------------

    /// Signing and verification cost per token, the verify path being on every API request.
    /// Not a test of correctness beyond the round trip; run it on an idle machine with
    /// `cargo test --release --lib api::jwt::tests::sign_and_verify_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run with --release"]
    fn sign_and_verify_timing() {
        const N: usize = 4_000;
        let keys = keys();
        let v = validation(&keys);
        let signer = key(2);
        let all: Vec<Claims> = (0..N)
            .map(|i| Claims {
                jti: format!("jti-{i}"),
                cnf: Some(Confirmation {
                    x5t_s256: x5t_s256(format!("client certificate {i}").as_bytes()),
                }),
                ..claims()
            })
            .collect();
        let started = std::time::Instant::now();
        let tokens: Vec<String> = all
            .iter()
            .map(|c| sign(c, "jwt-2", &signer).unwrap())
            .collect();
        let signing = started.elapsed();
        let started = std::time::Instant::now();
        let verified: Vec<Claims> = tokens.iter().map(|t| validate(t, &v).unwrap()).collect();
        let verifying = started.elapsed();
        assert_eq!(verified, all);
        let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / N as f64;
        eprintln!(
            "jwt timing over {N} tokens: sign {:.1} µs/token ({:.0}/s), verify {:.1} µs/token ({:.0}/s)",
            per(signing),
            1e6 / per(signing),
            per(verifying),
            1e6 / per(verifying),
        );
    }

    // --- properties ---------------------------------------------------------------

    /// Generated tokens: every claim and header parameter perturbed against a model of the
    /// rules written out here independently, mutated and spliced tokens, and arbitrary text.
    mod props {
        use super::*;
        use crate::proptest_support::{config, mutated_text};
        use proptest::prelude::*;
        use serde_json::json;

        /// Pieces of token syntax that mutations insert.
        const TOKEN_SYNTAX: &[&[u8]] = &[
            b".", b"..", b"-", b"_", b"=", b"+", b"/", b"A", b"AA", b"eyJ", b"e30", b" ", b"%2E",
        ];

        /// A time claim's JSON: `Some(at)`, or now and then the wrong type or absent.
        fn time(at: Option<i64>) -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                16 => Just(at.map(|t| json!(t))),
                1 => Just(None),
                1 => prop::sample::select(vec![
                    json!("1700000000"),
                    json!(1.7e9),
                    json!(NOW as f64 + 0.5),
                    json!(i64::MAX),
                    json!(i64::MIN),
                    json!(u64::MAX),
                    Value::Null,
                    json!(true),
                ])
                .prop_map(Some),
            ]
        }

        /// `exp`, `iat` and `nbf` around `NOW`: issued up to 15 minutes ago (or a little in the
        /// future), living up to a little over the maximum lifetime (or a negative one).
        fn times() -> impl Strategy<Value = (Option<Value>, Option<Value>, Option<Value>)> {
            (
                -900i64..60,
                -5i64..1000,
                prop::option::weighted(0.4, -100i64..100),
            )
                .prop_flat_map(|(issued, lifetime, nbf)| {
                    let iat = NOW + issued;
                    (
                        time(Some(iat + lifetime)),
                        time(Some(iat)),
                        time(nbf.map(|d| NOW + d)),
                    )
                })
        }

        /// A string claim: usually `good`, sometimes another string, the wrong type or absent.
        fn text(good: &'static str, other: &'static str) -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                24 => Just(Some(json!(good))),
                1 => Just(Some(json!(other))),
                1 => Just(None),
                1 => prop::sample::select(vec![json!(7), json!([good]), Value::Null])
                    .prop_map(Some),
            ]
        }

        /// Payloads around a valid one: each claim may be perturbed, and an unknown claim added.
        fn payloads() -> impl Strategy<Value = Map<String, Value>> {
            let iss = text(ISS, "https://gateway.example/issuer/");
            let sub = prop_oneof![
                24 => "[a-z0-9-]{1,20}".prop_map(|s| Some(json!(s))),
                1 => Just(Some(json!(""))),
                1 => Just(None),
                1 => Just(Some(json!(["client"]))),
            ];
            let aud = prop::option::weighted(
                0.97,
                prop::sample::select(vec![
                    json!(AUD),
                    json!(AUD),
                    json!(AUD),
                    json!(AUD),
                    json!(AUD),
                    json!(AUD),
                    json!(AUD),
                    json!([AUD, "other"]),
                    json!(["other", AUD]),
                    json!(["other"]),
                    json!([AUD, 5]),
                    json!([]),
                    json!("xianjie-api2"),
                    json!("XIANJIE-API"),
                    json!({ "aud": AUD }),
                ]),
            );
            let cnf = prop_oneof![
                12 => Just(None),
                6 => any::<[u8; 32]>().prop_map(|d| Some(json!({ "x5t#S256": B64.encode(d) }))),
                1 => any::<[u8; 32]>().prop_map(|d| {
                    Some(json!({ "x5t#S256": base64::engine::general_purpose::STANDARD.encode(d) }))
                }),
                1 => any::<[u8; 31]>().prop_map(|d| Some(json!({ "x5t#S256": B64.encode(d) }))),
                1 => prop::sample::select(vec![json!("thumb"), json!({}), json!({ "x5t#S256": 5 })])
                    .prop_map(Some),
            ];
            let extra = prop::option::weighted(0.3, Just(("roles", json!(["admin"]))));
            (
                iss,
                sub,
                aud,
                times(),
                text("reports:read", ""),
                text("0f3c9a51", ""),
                cnf,
                extra,
            )
                .prop_map(
                    |(iss, sub, aud, (exp, iat, nbf), scope, jti, cnf, extra)| {
                        let mut m = Map::new();
                        let claims = [
                            ("iss", iss),
                            ("sub", sub),
                            ("aud", aud),
                            ("exp", exp),
                            ("iat", iat),
                            ("nbf", nbf),
                            ("scope", scope),
                            ("jti", jti),
                            ("cnf", cnf),
                        ];
                        for (name, value) in claims {
                            if let Some(v) = value {
                                m.insert(name.to_owned(), v);
                            }
                        }
                        if let Some((name, v)) = extra {
                            m.insert(name.to_owned(), v);
                        }
                        m
                    },
                )
        }

        /// Whether `t` is the unpadded base64url text of 32 bytes, checked by its characters: 43
        /// of the URL-safe alphabet, the last carrying 4 bits whose low 2 are zero.
        fn thumbprint_ok(t: &str) -> bool {
            const ALPHABET: &str =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            t.len() == 43
                && t.chars().all(|c| ALPHABET.contains(c))
                && t.chars()
                    .last()
                    .and_then(|c| ALPHABET.find(c))
                    .is_some_and(|i| i % 4 == 0)
        }

        /// The claims validation must return for payload `p`, or `None` when it must refuse:
        /// the rules of RFC 7519/9068 as this module documents them, written out again.
        fn expected(p: &Map<String, Value>, leeway: i64) -> Option<Claims> {
            let s = |k: &str| p.get(k).and_then(Value::as_str);
            let int = |k: &str| p.get(k).and_then(Value::as_i64);
            let (iss, sub, scope, jti) = (s("iss")?, s("sub")?, s("scope")?, s("jti")?);
            let (exp, iat) = (int("exp")?, int("iat")?);
            let nbf = match p.get("nbf") {
                None => None,
                Some(v) => Some(v.as_i64()?),
            };
            let aud_ok = match p.get("aud")? {
                Value::String(a) => a == AUD,
                Value::Array(items) => {
                    if !items.iter().all(Value::is_string) {
                        return None;
                    }
                    items.iter().any(|i| i == AUD)
                }
                _ => return None,
            };
            let cnf = match p.get("cnf") {
                None => None,
                Some(c) => {
                    let t = c.get("x5t#S256")?.as_str()?;
                    if !thumbprint_ok(t) {
                        return None;
                    }
                    Some(Confirmation {
                        x5t_s256: t.to_owned(),
                    })
                }
            };
            let leeway = i128::from(leeway.clamp(0, MAX_LEEWAY_SECS));
            let (now, e, i) = (i128::from(NOW), i128::from(exp), i128::from(iat));
            let ok = iss == ISS
                && aud_ok
                && !sub.is_empty()
                && e > now - leeway
                && nbf.is_none_or(|n| i128::from(n) <= now + leeway)
                && i <= now + leeway
                && e - i > 0
                && e - i <= 900;
            ok.then(|| Claims {
                iss: iss.to_owned(),
                aud: AUD.to_owned(),
                sub: sub.to_owned(),
                scope: scope.to_owned(),
                iat,
                exp,
                nbf,
                jti: jti.to_owned(),
                cnf,
            })
        }

        /// A valid token of key 1 or 2 for a generated subject.
        fn valid_token() -> impl Strategy<Value = String> {
            ("[a-z0-9-]{1,20}", 1u8..=2).prop_map(|(sub, k)| {
                let c = Claims { sub, ..claims() };
                sign(&c, &format!("jwt-{k}"), &key(k)).unwrap()
            })
        }

        proptest! {
            #![proptest_config(config(512))]

            /// A signed payload is accepted exactly when its claims are valid, and then read back
            /// exactly; the leeway asked for is clamped.
            #[test]
            fn signed_claims_are_accepted_exactly_when_valid(
                payload in payloads(),
                leeway in -10i64..100,
                k in 1u8..=2,
            ) {
                let token = forge(
                    &header(&format!("jwt-{k}")),
                    &Value::Object(payload.clone()).to_string(),
                    &key(k),
                );
                let keys = keys();
                let v = Validation { leeway_secs: leeway, ..validation(&keys) };
                prop_assert_eq!(validate(&token, &v).ok(), expected(&payload, leeway));
            }

            /// A header is accepted only when it pins EdDSA, carries no forbidden parameter or
            /// repeated member, has the access-token type, and names the key that signed.
            #[test]
            fn headers_are_accepted_only_when_they_name_the_signing_key(
                alg in prop::option::weighted(0.9, prop::sample::select(vec![
                    json!("EdDSA"), json!("EdDSA"), json!("EdDSA"), json!("none"),
                    json!("eddsa"), json!("HS256"), json!("EdDSA "), json!(["EdDSA"]),
                ])),
                typ in prop::option::weighted(0.9, prop::sample::select(vec![
                    json!("at+jwt"), json!("AT+JWT"), json!("application/at+jwt"), json!("JWT"),
                    json!("at+jwt "), json!(5),
                ])),
                kid in prop::option::weighted(0.9, prop::sample::select(vec![
                    json!("jwt-1"), json!("jwt-2"), json!("jwt-3"), json!("JWT-1"), json!(1),
                ])),
                forbidden in prop::option::weighted(0.2, prop::sample::select(
                    FORBIDDEN_HEADER_PARAMS.to_vec(),
                )),
                extra in prop::option::weighted(0.3, Just(("cty", json!("x")))),
                duplicate in prop::bool::weighted(0.1),
                signer in 1u8..=3,
            ) {
                let mut h = Map::new();
                for (name, value) in [("alg", alg), ("typ", typ), ("kid", kid)] {
                    if let Some(v) = value {
                        h.insert(name.to_owned(), v);
                    }
                }
                if let Some(p) = forbidden {
                    h.insert(p.to_owned(), json!("https://attacker.example/k"));
                }
                if let Some((name, v)) = extra {
                    h.insert(name.to_owned(), v);
                }
                let mut text = Value::Object(h.clone()).to_string();
                let repeated = duplicate && !h.is_empty();
                if repeated {
                    // The first member again, right after the brace.
                    let (name, v) = h.iter().next().unwrap();
                    text.insert_str(1, &format!("{}:{v},", json!(name)));
                }
                let token = forge(&text, &payload().to_string(), &key(signer));
                let typ_ok = h.get("typ").and_then(Value::as_str).is_some_and(|t| {
                    t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
                });
                let kid_ok = h.get("kid").and_then(Value::as_str)
                    == Some(format!("jwt-{signer}").as_str())
                    && signer <= 2;
                let ok = !repeated
                    && h.get("alg") == Some(&json!("EdDSA"))
                    && forbidden.is_none()
                    && typ_ok
                    && kid_ok;
                let got = check(&token);
                prop_assert_eq!(got.is_ok(), ok, "{} -> {:?}", text, got);
            }

            /// Any change to the text of a valid token is refused: every part has exactly one
            /// accepted encoding and the signature covers the first two as received.
            #[test]
            fn a_changed_token_is_refused(
                (token, changed) in valid_token()
                    .prop_flat_map(|t| (Just(t.clone()), mutated_text(&t, TOKEN_SYNTAX, 4))),
            ) {
                prop_assume!(changed != token);
                prop_assert!(check(&token).is_ok());
                let got = check(&changed);
                prop_assert!(got.is_err(), "accepted a changed token: {}", changed);
            }

            /// Parts spliced from different valid tokens are refused unless they rebuild one of
            /// them.
            #[test]
            fn spliced_tokens_are_refused(
                tokens in prop::collection::vec(valid_token(), 3),
                pick in prop::array::uniform3(0usize..3),
            ) {
                let parts: Vec<Vec<&str>> = tokens.iter().map(|t| t.split('.').collect()).collect();
                let spliced = format!(
                    "{}.{}.{}",
                    parts[pick[0]][0], parts[pick[1]][1], parts[pick[2]][2]
                );
                let genuine = tokens.contains(&spliced);
                prop_assert_eq!(check(&spliced).is_ok(), genuine, "{}", spliced);
            }

            /// A token signed by any key but the one its kid names is refused as a bad signature.
            #[test]
            fn a_token_signed_by_another_key_is_refused(seed in any::<[u8; 32]>(), k in 1u8..=2) {
                let other = SigningKey::from_bytes(&seed);
                prop_assume!(other.verifying_key() != key(k).verifying_key());
                let token = sign(&claims(), &format!("jwt-{k}"), &other).unwrap();
                prop_assert_eq!(check(&token), Err(JwtError::Signature));
            }

            /// Arbitrary text is refused, and refused as too long before anything else when it
            /// is over the limit.
            #[test]
            fn arbitrary_text_is_refused(
                text in prop_oneof![
                    any::<String>(),
                    "[A-Za-z0-9_.=-]{0,300}",
                    ("[A-Za-z0-9_.-]{1,9}", 900usize..1200).prop_map(|(s, n)| s.repeat(n)),
                ],
            ) {
                let got = check(&text);
                if text.len() > MAX_TOKEN_BYTES {
                    prop_assert_eq!(got, Err(JwtError::TooLong { len: text.len() }));
                } else {
                    prop_assert!(got.is_err());
                }
            }
        }
    }
}
