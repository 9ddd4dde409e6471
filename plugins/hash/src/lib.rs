//! `hash`: digests, HMACs, base64/hex and UUIDs, which a model cannot compute in its head.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose};
use capsule_sdk::prelude::*;
use hmac::{Hmac, Mac};
use sha2::Digest;

/// A digest algorithm.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Algorithm {
    Sha256,
    Sha512,
    Blake3,
    Sha1,
    Md5,
}

/// How bytes are written as text.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// Lowercase hexadecimal.
    #[default]
    Hex,
    /// Standard base64 with `=` padding.
    Base64,
    /// URL-safe base64 (`-` and `_`) without padding, as in JWTs.
    Base64url,
}

/// How the input of `hash` is to be read.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum InputEncoding {
    /// The UTF-8 bytes of the text.
    #[default]
    Text,
    /// Hexadecimal bytes.
    Hex,
    /// Base64 bytes (standard or URL-safe, padding optional).
    Base64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HashArgs {
    /// The data to hash.
    input: String,
    /// sha256 (default), sha512, blake3, or sha1/md5 (broken: only for checksums that require
    /// them).
    #[serde(default)]
    algorithm: Option<Algorithm>,
    /// How to read `input` (default text).
    #[serde(default)]
    input_encoding: Option<InputEncoding>,
    /// How to write the digest (default hex).
    #[serde(default)]
    output_encoding: Option<Encoding>,
    /// If set, compute an HMAC with this key (its UTF-8 bytes) instead of a plain digest, e.g.
    /// to check a webhook signature. Not available with blake3.
    #[serde(default)]
    hmac_key: Option<String>,
}

/// Compute a cryptographic digest (SHA-256, SHA-512, BLAKE3, SHA-1, MD5) or an HMAC of text or
/// of bytes given as hex/base64. Returns the digest as hex (default) or base64.
#[tool(title = "Hash", read_only, idempotent)]
fn hash(args: HashArgs) -> Result<String, ToolError> {
    let data = read_input(&args.input, args.input_encoding.unwrap_or_default())?;
    let algorithm = args.algorithm.unwrap_or(Algorithm::Sha256);
    let digest = match &args.hmac_key {
        None => digest(algorithm, &data),
        Some(key) => hmac(algorithm, key.as_bytes(), &data)?,
    };
    Ok(write_bytes(
        &digest,
        args.output_encoding.unwrap_or_default(),
    ))
}

fn digest(algorithm: Algorithm, data: &[u8]) -> Vec<u8> {
    match algorithm {
        Algorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Algorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
        Algorithm::Blake3 => blake3::hash(data).as_bytes().to_vec(),
        Algorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        Algorithm::Md5 => md5::Md5::digest(data).to_vec(),
    }
}

fn hmac(algorithm: Algorithm, key: &[u8], data: &[u8]) -> Result<Vec<u8>, ToolError> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this never fails.
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
    Ok(match algorithm {
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
        Algorithm::Md5 => run::<Hmac<md5::Md5>>(key, data),
        Algorithm::Blake3 => {
            return Err(ToolError::invalid_arguments(
                "HMAC is not defined for blake3; use sha256 or sha512 with hmac_key",
            ));
        }
    })
}

fn read_input(input: &str, encoding: InputEncoding) -> Result<Vec<u8>, ToolError> {
    match encoding {
        InputEncoding::Text => Ok(input.as_bytes().to_vec()),
        InputEncoding::Hex => decode_hex(input),
        InputEncoding::Base64 => decode_base64(input),
    }
}

fn write_bytes(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Hex => hex::encode(bytes),
        Encoding::Base64 => general_purpose::STANDARD.encode(bytes),
        Encoding::Base64url => general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    }
}

/// Standard-alphabet base64 that takes padding or not.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 in either alphabet, padded or not, ignoring whitespace (line-wrapped PEM-style input).
fn decode_base64(text: &str) -> Result<Vec<u8>, ToolError> {
    let normalized: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    LENIENT_BASE64
        .decode(normalized.as_bytes())
        .map_err(|error| ToolError::invalid_arguments(format!("not valid base64: {error}")))
}

/// Hex in either case, ignoring whitespace, `:` separators and a leading `0x`.
fn decode_hex(text: &str) -> Result<Vec<u8>, ToolError> {
    let trimmed = text.trim();
    let trimmed = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let digits: String = trimmed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&digits)
        .map_err(|error| ToolError::invalid_arguments(format!("not valid hex: {error}")))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EncodeArgs {
    /// The text to encode (its UTF-8 bytes).
    text: String,
    /// The encoding to produce.
    encoding: Encoding,
}

/// Encode text as base64, URL-safe base64 or hex.
#[tool(title = "Encode", read_only, idempotent)]
fn encode(args: EncodeArgs) -> String {
    write_bytes(args.text.as_bytes(), args.encoding)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DecodeArgs {
    /// The encoded data. Whitespace is ignored; base64 may use either alphabet, with or without
    /// padding; hex may have a `0x` prefix or `:` separators.
    data: String,
    /// The encoding of `data` (base64 and base64url each accept either alphabet).
    encoding: Encoding,
    /// Return the decoded bytes as hex instead of text; needed when they are not UTF-8.
    #[serde(default)]
    as_hex: bool,
}

/// Decode base64, URL-safe base64 or hex back into text (or into hex, for binary data).
#[tool(title = "Decode", read_only, idempotent)]
fn decode(args: DecodeArgs) -> Result<String, ToolError> {
    let bytes = match args.encoding {
        Encoding::Hex => decode_hex(&args.data)?,
        Encoding::Base64 | Encoding::Base64url => decode_base64(&args.data)?,
    };
    if args.as_hex {
        return Ok(hex::encode(bytes));
    }
    String::from_utf8(bytes).map_err(|error| {
        ToolError::new(format!(
            "the decoded {} bytes are not UTF-8 text ({}); call again with as_hex: true",
            error.as_bytes().len(),
            error.utf8_error()
        ))
    })
}

/// A UUID version.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum UuidVersion {
    /// Random.
    #[default]
    V4,
    /// Time-ordered: sorts by creation time, good for database keys.
    V7,
    /// Derived from a namespace and a name (SHA-1): the same inputs always give the same UUID.
    V5,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UuidArgs {
    /// The UUID version (default v4).
    #[serde(default)]
    version: Option<UuidVersion>,
    /// How many UUIDs to make, 1 to 100 (default 1). v5 always gives one.
    #[serde(default)]
    count: Option<u8>,
    /// For v5: the namespace, `dns`, `url`, `oid`, `x500`, or any UUID (default `dns`).
    #[serde(default)]
    namespace: Option<String>,
    /// For v5: the name to derive the UUID from, e.g. a domain name or URL.
    #[serde(default)]
    name: Option<String>,
}

/// Generated UUIDs.
#[derive(Debug, Serialize, JsonSchema)]
struct Uuids {
    /// The UUIDs, lowercase and hyphenated.
    uuids: Vec<String>,
}

/// Generate UUIDs: random (v4), time-ordered (v7) or name-based (v5, deterministic).
#[tool(title = "Generate UUIDs", read_only)]
fn uuid(args: UuidArgs) -> Result<Uuids, ToolError> {
    let count = args.count.unwrap_or(1);
    if !(1..=100).contains(&count) {
        return Err(ToolError::invalid_arguments(
            "count must be between 1 and 100",
        ));
    }
    let version = args.version.unwrap_or_default();
    if !matches!(version, UuidVersion::V5) && (args.name.is_some() || args.namespace.is_some()) {
        return Err(ToolError::invalid_arguments(
            "name and namespace are only used with version v5",
        ));
    }
    let uuids = match version {
        UuidVersion::V4 => (0..count).map(|_| uuid::Uuid::new_v4()).collect(),
        UuidVersion::V7 => (0..count).map(|_| uuid::Uuid::now_v7()).collect(),
        UuidVersion::V5 => {
            let Some(name) = &args.name else {
                return Err(ToolError::invalid_arguments(
                    "version v5 needs a `name` to derive the UUID from",
                ));
            };
            let namespace = namespace(args.namespace.as_deref().unwrap_or("dns"))?;
            vec![uuid::Uuid::new_v5(&namespace, name.as_bytes())]
        }
    };
    Ok(Uuids {
        uuids: uuids.iter().map(ToString::to_string).collect(),
    })
}

fn namespace(name: &str) -> Result<uuid::Uuid, ToolError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other).map_err(|error| {
            ToolError::invalid_arguments(format!(
                "namespace must be dns, url, oid, x500 or a UUID: {error}"
            ))
        })?,
    })
}

export_plugin!(hash, encode, decode, uuid);

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_sdk::serde_json::{Value, json};
    use capsule_sdk::{CallError, ToolOutput};

    fn call(name: &str, arguments: Value) -> Result<ToolOutput, CallError> {
        CAPSULE_PLUGIN.call(name, &arguments.to_string())
    }

    fn text(name: &str, arguments: Value) -> String {
        call(name, arguments).unwrap().text_content()
    }

    #[test]
    fn digests_match_known_vectors() {
        let cases = [
            (
                "sha256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                "sha512",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
            (
                "blake3",
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
            ("sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            ("md5", "900150983cd24fb0d6963f7d28e17f72"),
        ];
        for (algorithm, expected) in cases {
            assert_eq!(
                text("hash", json!({"input": "abc", "algorithm": algorithm})),
                expected,
                "{algorithm}"
            );
        }
        assert_eq!(
            text("hash", json!({"input": ""})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hash_reads_binary_input_and_writes_base64() {
        assert_eq!(
            text(
                "hash",
                json!({"input": "61 62 63", "input_encoding": "hex", "output_encoding": "base64"})
            ),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            text(
                "hash",
                json!({"input": "YWJj", "input_encoding": "base64", "output_encoding": "base64url"})
            ),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            text(
                "hash",
                json!({"input": "what do ya want for nothing?", "hmac_key": "Jefe"})
            ),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(matches!(
            call(
                "hash",
                json!({"input": "x", "hmac_key": "k", "algorithm": "blake3"})
            ),
            Err(CallError::InvalidArguments(_))
        ));
    }

    #[test]
    fn encode_and_decode_round_trip() {
        let message = "héllo? wörld>";
        for encoding in ["base64", "base64url", "hex"] {
            let encoded = text("encode", json!({"text": message, "encoding": encoding}));
            assert_eq!(
                text("decode", json!({"data": encoded, "encoding": encoding})),
                message,
                "{encoding}"
            );
        }
        assert_eq!(
            text("encode", json!({"text": "a?>", "encoding": "base64"})),
            "YT8+"
        );
        assert_eq!(
            text("encode", json!({"text": "a?>", "encoding": "base64url"})),
            "YT8-"
        );
        assert_eq!(
            text("encode", json!({"text": "hi", "encoding": "hex"})),
            "6869"
        );
    }

    #[test]
    fn decode_is_lenient_about_form() {
        assert_eq!(
            text("decode", json!({"data": "aGVs\nbG8", "encoding": "base64"})),
            "hello"
        );
        assert_eq!(
            text(
                "decode",
                json!({"data": "aGVsbG8=", "encoding": "base64url"})
            ),
            "hello"
        );
        assert_eq!(
            text("decode", json!({"data": "0x68:65:6C", "encoding": "hex"})),
            "hel"
        );
    }

    #[test]
    fn decode_explains_binary_and_bad_input() {
        assert_eq!(
            call("decode", json!({"data": "/w==", "encoding": "base64"})),
            Err(CallError::Failed(
                "the decoded 1 bytes are not UTF-8 text (invalid utf-8 sequence of 1 bytes from index 0); call again with as_hex: true".into()
            ))
        );
        assert_eq!(
            text(
                "decode",
                json!({"data": "/w==", "encoding": "base64", "as_hex": true})
            ),
            "ff"
        );
        assert!(matches!(
            call("decode", json!({"data": "abc", "encoding": "hex"})),
            Err(CallError::InvalidArguments(message)) if message.starts_with("not valid hex")
        ));
        assert!(matches!(
            call("decode", json!({"data": "a*b", "encoding": "base64"})),
            Err(CallError::InvalidArguments(message)) if message.starts_with("not valid base64")
        ));
    }

    #[test]
    fn uuids_have_the_requested_version() {
        let output = call("uuid", json!({"count": 3})).unwrap();
        let uuids = output.structured.unwrap()["uuids"].clone();
        let uuids: Vec<uuid::Uuid> = uuids
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(uuids.len(), 3);
        assert!(uuids.iter().all(|u| u.get_version_num() == 4));
        assert_ne!(uuids[0], uuids[1]);

        let v7 = call("uuid", json!({"version": "v7"}))
            .unwrap()
            .structured
            .unwrap();
        let v7: uuid::Uuid = v7["uuids"][0].as_str().unwrap().parse().unwrap();
        assert_eq!(v7.get_version_num(), 7);
    }

    #[test]
    fn uuid_v5_is_deterministic() {
        // The well-known v5 UUID of "python.org" in the DNS namespace.
        assert_eq!(
            call("uuid", json!({"version": "v5", "name": "python.org"}))
                .unwrap()
                .structured
                .unwrap(),
            json!({"uuids": ["886313e1-3b8a-5372-9b90-0c9aee199e5d"]})
        );
        assert!(matches!(
            call("uuid", json!({"version": "v5"})),
            Err(CallError::InvalidArguments(_))
        ));
        assert!(matches!(
            call("uuid", json!({"name": "x"})),
            Err(CallError::InvalidArguments(_))
        ));
        assert!(matches!(
            call("uuid", json!({"count": 0})),
            Err(CallError::InvalidArguments(_))
        ));
    }
}
