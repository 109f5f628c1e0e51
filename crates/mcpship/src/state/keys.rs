//! Key rings from the environment: `kid:BASE64KEY[,kid:BASE64KEY…]`.
//!
//! One format for every secret of this kind (`MCPSHIP_SESSION_KEYS`,
//! `MCPSHIP_REQUEST_STATE_KEYS`). The first key seals; every key opens. A key
//! is rotated in three deploys, each finished on every replica before the
//! next starts:
//!
//! 1. `old:…` → `old:…,new:…` (every replica opens what `new` will seal);
//! 2. → `new:…,old:…` (`new` seals, values sealed with `old` still open);
//! 3. once those have expired → `new:…`.
//!
//! The setting is kept as the text it was given until it is parsed, and it
//! shows only its key ids (`k1:***`) in `mcpship config`, `Debug` and
//! errors. Parsed keys are zeroed when dropped.

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use zeroize::Zeroizing;

/// The longest key id. Ids travel in clear next to what they sealed.
pub const MAX_KEY_ID_LEN: usize = 32;

/// How to make a key, for error messages.
pub const GENERATE_HINT: &str = "generate a key with `openssl rand -base64 32`";

/// A key ring as configured: the raw text, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRingSetting(String);

impl KeyRingSetting {
    /// A setting holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The setting with every key replaced by `***`: `k2:***,k1:***`.
    pub fn redacted(&self) -> String {
        self.items()
            .map(|item| match item.split_once(':') {
                Some((id, _)) => format!("{}:***", id.trim()),
                None => "***".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn items(&self) -> impl Iterator<Item = &str> {
        self.0.split(',').map(str::trim).filter(|i| !i.is_empty())
    }

    /// Parses the ring, requiring every key to be `lengths` bytes long.
    pub fn parse(&self, lengths: std::ops::RangeInclusive<usize>) -> Result<KeyRing, KeyRingError> {
        let mut keys: Vec<RingKey> = Vec::new();
        for (n, item) in self.items().enumerate() {
            let Some((id, key)) = item.split_once(':') else {
                return Err(KeyRingError::NotAPair { item: n + 1 });
            };
            let id = id.trim();
            if id.is_empty()
                || id.len() > MAX_KEY_ID_LEN
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyRingError::BadKeyId { id: id.to_owned() });
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::DuplicateKeyId { id: id.to_owned() });
            }
            let secret =
                decode(key.trim()).ok_or_else(|| KeyRingError::NotBase64 { id: id.to_owned() })?;
            if !lengths.contains(&secret.len()) {
                return Err(KeyRingError::WrongLength {
                    id: id.to_owned(),
                    len: secret.len(),
                    expected: if lengths.start() == lengths.end() {
                        format!("{}", lengths.start())
                    } else {
                        format!("{} to {}", lengths.start(), lengths.end())
                    },
                });
            }
            keys.push(RingKey {
                id: id.to_owned(),
                secret,
            });
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing { keys })
    }
}

/// Standard base64 (what `openssl rand -base64` prints), or URL-safe; with
/// or without padding.
fn decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    for engine in [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ] {
        if let Ok(bytes) = engine.decode(text) {
            return Some(Zeroizing::new(bytes));
        }
    }
    None
}

impl std::fmt::Debug for KeyRingSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyRingSetting")
            .field(&self.redacted())
            .finish()
    }
}

impl serde::Serialize for KeyRingSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// clap's parser: takes the text as it is, so a mistake is reported by
/// [`crate::ServeConfig::validate`] with the keys redacted, never echoed.
pub(crate) fn parse_setting(value: &str) -> Result<KeyRingSetting, String> {
    Ok(KeyRingSetting::new(value))
}

/// A parsed key ring; the first key seals.
pub struct KeyRing {
    keys: Vec<RingKey>,
}

struct RingKey {
    id: String,
    secret: Zeroizing<Vec<u8>>,
}

impl KeyRing {
    /// The id of the key that seals.
    pub fn sealing_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Key ids in order, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// (id, key) pairs in order, the sealing one first.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.keys
            .iter()
            .map(|k| (k.id.as_str(), k.secret.as_slice()))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a parsed ring has a key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a key ring is not valid. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(
        "no keys; write KEY_ID:BASE64KEY pairs, comma-separated, newest first ({GENERATE_HINT})"
    )]
    Empty,
    #[error("item {item} is not KEY_ID:BASE64KEY; write e.g. k1:<key> ({GENERATE_HINT})")]
    NotAPair { item: usize },
    #[error("key id {id:?} must be 1 to {MAX_KEY_ID_LEN} ASCII letters, digits, '-' or '_'")]
    BadKeyId { id: String },
    #[error("key id {id:?} appears twice; give every key its own id")]
    DuplicateKeyId { id: String },
    #[error("key {id:?} is not base64; {GENERATE_HINT}")]
    NotBase64 { id: String },
    #[error("key {id:?} is {len} bytes; it must be {expected} bytes ({GENERATE_HINT})")]
    WrongLength {
        id: String,
        len: usize,
        expected: String,
    },
    #[error("the keys were refused: {0}")]
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "q83vEi0HWbJ1VdA+Z2fQ6l1lOC6n2b8dNq1uKx0sKjI=";
    const KEY_B: &str = "Jb0dY1-7gHq_WZ2o5ZtC8p3z6w9bX4nL2mVyQeRk0sA";

    #[test]
    fn parses_pairs_in_order_with_either_alphabet() {
        let ring = KeyRingSetting::new(format!(" new:{KEY_B} , old:{KEY_A}\n"))
            .parse(32..=32)
            .unwrap();
        assert_eq!(ring.sealing_id(), "new");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["new", "old"]);
        assert!(ring.keys().all(|(_, k)| k.len() == 32));
    }

    #[test]
    fn mistakes_are_named_without_the_keys() {
        let cases = [
            ("", "no keys"),
            (KEY_A, "item 1 is not KEY_ID:BASE64KEY"),
            (&format!("a b:{KEY_A}"), "key id \"a b\""),
            (&format!("k:{KEY_A},k:{KEY_B}"), "appears twice"),
            ("k:not*base64", "not base64"),
            ("k:c2hvcnQ=", "is 5 bytes; it must be 32 bytes"),
        ];
        for (value, needle) in cases {
            let setting = KeyRingSetting::new(value);
            let error = setting.parse(32..=32).unwrap_err().to_string();
            assert!(error.contains(needle), "{value:?}: {error}");
            assert!(
                error.contains("openssl") || !needle.contains("bytes"),
                "{error}"
            );
            assert!(
                !error.contains(KEY_A) && !error.contains("c2hvcnQ"),
                "{error}"
            );
        }
    }

    #[test]
    fn shows_only_key_ids() {
        let setting = KeyRingSetting::new(format!("k2:{KEY_B},k1:{KEY_A},junk"));
        assert_eq!(setting.redacted(), "k2:***,k1:***,***");
        let debug = format!("{setting:?}");
        assert!(!debug.contains(KEY_A) && !debug.contains(KEY_B), "{debug}");
        let json = serde_json::to_string(&setting).unwrap();
        assert_eq!(json, "\"k2:***,k1:***,***\"");
    }
}
