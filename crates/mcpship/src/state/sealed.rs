//! Sealed sessions: a legacy session's `initialize` parameters travel inside
//! its own `Mcp-Session-Id`, so any replica holding the keys can restore it,
//! with no store at all.
//!
//! The id a client sees is `{local}.{kid}.{sealed}`:
//! - `local` is the id rmcp made (a UUID), which is what rmcp sees;
//! - `kid` names the key that sealed it (see [`super::keys`]);
//! - `sealed` is base64url of a random 24-byte nonce and the
//!   XChaCha20-Poly1305 ciphertext of `{"iat", "exp", "session"}`: issued-at
//!   and expiry (Unix milliseconds) and rmcp's [`SessionState`].
//!
//! The associated data binds the ciphertext to `local` and `kid`, so a sealed
//! part cannot be moved to another session id or relabelled with another key.
//!
//! A session id cannot change after `initialize`, so the expiry cannot slide
//! with use: it is absolute, `MCPSHIP_SESSION_MAX_LIFETIME` after the
//! handshake. The idle timeout still ends the in-memory copy on a replica; the
//! next request restores it from the id while the seal is valid.
//!
//! rmcp calls [`SessionStore::store`] after a handshake and
//! [`SessionStore::load`] when a request names a session the replica does not
//! hold, both inside the request's own future. The HTTP layer
//! ([`crate::http`]'s sealed-session layer) runs that future inside a
//! task-local [`Carried`] slot: it puts there the state it opened from the
//! request's id, and takes from it the state stored by a handshake, which it
//! seals into the response's id. No map, no lock, no I/O.

use std::{
    cell::RefCell,
    collections::HashMap,
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Generate, Payload},
};
use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use tokio::task::futures::TaskLocalFuture;

use super::keys::{KeyRing, KeyRingError};

/// Bytes of a session key.
pub const SESSION_KEY_LEN: usize = 32;
/// The longest `Mcp-Session-Id` this server issues or reads. Load balancers
/// cap a header line (AWS ALB: 16 KiB); an `initialize` whose parameters do
/// not fit is refused.
pub const MAX_SEALED_ID_LEN: usize = 8 * 1024;
/// Domain separation for the associated data.
const AAD_LABEL: &[u8] = b"mcpship/sealed-session/v1";
/// Ended sessions this replica remembers, so their ids answer 404 here (see
/// [`SealedSessions::end`]). Bounded: past this, the oldest-expiring go first.
pub const MAX_ENDED_SESSIONS: usize = 10_000;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

tokio::task_local! {
    static CARRIED: RefCell<Carried>;
}

/// What one request carries between the HTTP layer and the store.
#[derive(Default)]
pub(crate) struct Carried {
    /// Opened from the request's session id: (local id, state).
    opened: Option<(String, SessionState)>,
    /// Stored by rmcp after an `initialize` handshake.
    stored: Option<SessionState>,
}

impl Carried {
    /// A request naming `local`, whose seal opened to `state`.
    pub(crate) fn opened(local: String, state: SessionState) -> Self {
        Self {
            opened: Some((local, state)),
            stored: None,
        }
    }

    /// The state a handshake stored, if one did.
    pub(crate) fn into_stored(self) -> Option<SessionState> {
        self.stored
    }
}

/// Runs `future` with `carried` reachable from [`SealedSessions`]' store.
pub(crate) fn carry<F: Future>(
    carried: Carried,
    future: F,
) -> TaskLocalFuture<RefCell<Carried>, F> {
    CARRIED.scope(RefCell::new(carried), future)
}

/// The expiry and the state, as sealed.
#[derive(serde::Serialize)]
struct ToSeal<'a> {
    iat: u64,
    exp: u64,
    session: &'a SessionState,
}

#[derive(serde::Deserialize)]
struct Opened {
    exp: u64,
    session: SessionState,
}

/// A session id that verified.
#[derive(Debug)]
pub struct OpenedId<'a> {
    /// rmcp's id of the session.
    pub local: &'a str,
    /// When the id expires, Unix milliseconds.
    pub expires_ms: u64,
    /// The session's state.
    pub state: SessionState,
}

/// Why a session id did not open. Client mistakes, logged at debug level.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("not a sealed session id")]
    Malformed,
    #[error("sealed with key {0:?}, which this replica does not hold")]
    UnknownKey(String),
    #[error("failed verification (forged, tampered with, or another key with the same id)")]
    Forged,
    #[error("expired")]
    Expired,
    #[error("ended by DELETE on this replica")]
    Ended,
}

/// Why an id could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the session id would be {0} bytes, over the limit of {MAX_SEALED_ID_LEN}: the client's initialize parameters are too large"
    )]
    TooLarge(usize),
    #[error("cannot seal the session: {0}")]
    Internal(String),
}

/// Seals legacy sessions into their ids, and is rmcp's [`SessionStore`] for
/// them.
pub struct SealedSessions {
    /// (key id, cipher), the sealing key first.
    ciphers: Vec<(String, XChaCha20Poly1305)>,
    lifetime: Duration,
    /// Local ids ended by `DELETE` here, with their seal's expiry; checked
    /// only once one exists.
    ended: Mutex<HashMap<Box<str>, u64>>,
    any_ended: AtomicBool,
}

impl std::fmt::Debug for SealedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSessions")
            .field(
                "key_ids",
                &self.ciphers.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn associated_data(local: &str, kid: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + local.len() + kid.len() + 2);
    aad.extend_from_slice(AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(local.as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

impl SealedSessions {
    /// Sessions sealed with `ring` (32-byte keys), each valid for `lifetime`
    /// after its `initialize`.
    pub fn new(ring: &KeyRing, lifetime: Duration) -> Result<Self, KeyRingError> {
        let ciphers = ring
            .keys()
            .map(|(id, key)| {
                XChaCha20Poly1305::new_from_slice(key)
                    .map(|cipher| (id.to_owned(), cipher))
                    .map_err(|_| KeyRingError::WrongLength {
                        id: id.to_owned(),
                        len: key.len(),
                        expected: SESSION_KEY_LEN.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ciphers.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self {
            ciphers,
            lifetime,
            ended: Mutex::new(HashMap::new()),
            any_ended: AtomicBool::new(false),
        })
    }

    /// How long a sealed id stays valid.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The id to give the client for rmcp's session `local`.
    pub fn seal(&self, local: &str, state: &SessionState) -> Result<String, SealError> {
        self.seal_at(local, state, now_ms())
    }

    fn seal_at(&self, local: &str, state: &SessionState, now: u64) -> Result<String, SealError> {
        let (kid, cipher) = &self.ciphers[0];
        let plaintext = serde_json::to_vec(&ToSeal {
            iat: now,
            exp: now.saturating_add(self.lifetime.as_millis() as u64),
            session: state,
        })
        .map_err(|e| SealError::Internal(e.to_string()))?;
        let length =
            local.len() + kid.len() + 2 + (NONCE_LEN + plaintext.len() + TAG_LEN).div_ceil(3) * 4;
        if length > MAX_SEALED_ID_LEN {
            return Err(SealError::TooLarge(length));
        }
        let nonce = XNonce::try_generate().map_err(|e| SealError::Internal(e.to_string()))?;
        let aad = associated_data(local, kid);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|e| SealError::Internal(e.to_string()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        let mut id = String::with_capacity(length);
        id.push_str(local);
        id.push('.');
        id.push_str(kid);
        id.push('.');
        URL_SAFE_NO_PAD.encode_string(&sealed, &mut id);
        Ok(id)
    }

    /// Opens an id made by [`Self::seal`] (with any key of the ring).
    pub fn open<'a>(&self, id: &'a str) -> Result<OpenedId<'a>, OpenError> {
        self.open_at(id, now_ms())
    }

    /// Remembers that the session `local` was ended (by `DELETE`), so its id
    /// answers 404 on this replica from now on. Without a store, other
    /// replicas accept the id until it expires.
    pub fn end(&self, local: &str, expires_ms: u64) {
        let now = now_ms();
        let mut ended = self.lock_ended();
        if ended.len() >= MAX_ENDED_SESSIONS {
            ended.retain(|_, expires| *expires > now);
        }
        if ended.len() >= MAX_ENDED_SESSIONS
            && let Some(first) = ended
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(id, _)| id.clone())
        {
            ended.remove(&first);
        }
        ended.insert(local.into(), expires_ms);
        self.any_ended.store(true, Ordering::Release);
    }

    fn is_ended(&self, local: &str) -> bool {
        self.any_ended.load(Ordering::Acquire) && self.lock_ended().contains_key(local)
    }

    fn lock_ended(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, u64>> {
        // Every critical section is one map operation: a panic cannot leave
        // it inconsistent.
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open_at<'a>(&self, id: &'a str, now: u64) -> Result<OpenedId<'a>, OpenError> {
        if id.len() > MAX_SEALED_ID_LEN {
            return Err(OpenError::Malformed);
        }
        let mut parts = id.splitn(3, '.');
        let (Some(local), Some(kid), Some(sealed)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        if local.is_empty() {
            return Err(OpenError::Malformed);
        }
        let Some((_, cipher)) = self.ciphers.iter().find(|(id, _)| id == kid) else {
            return Err(OpenError::UnknownKey(kid.to_owned()));
        };
        let sealed = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OpenError::Malformed)?;
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError::Malformed)?;
        let aad = associated_data(local, kid);
        let plaintext = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Forged)?;
        // Authentic, so made by this code: a payload that does not parse is
        // from an incompatible version, and treated like a forgery.
        let opened: Opened = serde_json::from_slice(&plaintext).map_err(|_| OpenError::Forged)?;
        if now >= opened.exp {
            return Err(OpenError::Expired);
        }
        if self.is_ended(local) {
            return Err(OpenError::Ended);
        }
        Ok(OpenedId {
            local,
            expires_ms: opened.exp,
            state: opened.session,
        })
    }
}

#[async_trait::async_trait]
impl SessionStore for SealedSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        // The state opened from this request's id; a request with no sealed
        // id (or outside a request) finds nothing, which rmcp answers with 404.
        Ok(CARRIED
            .try_with(|carried| {
                let mut carried = carried.borrow_mut();
                match &carried.opened {
                    Some((local, _)) if local == session_id => {
                        carried.opened.take().map(|(_, state)| state)
                    }
                    _ => None,
                }
            })
            .ok()
            .flatten())
    }

    async fn store(
        &self,
        _session_id: &str,
        state: &SessionState,
    ) -> Result<(), SessionStoreError> {
        CARRIED
            .try_with(|carried| carried.borrow_mut().stored = Some(state.clone()))
            .map_err(|_| "a sealed session was stored outside the request that made it".into())
    }

    async fn delete(&self, _session_id: &str) -> Result<(), SessionStoreError> {
        // Nothing is stored. The id stays valid elsewhere until it expires.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::keys::KeyRingSetting;

    fn sessions(keys: &str, lifetime: Duration) -> SealedSessions {
        let ring = KeyRingSetting::new(keys).parse(32..=32).unwrap();
        SealedSessions::new(&ring, lifetime).unwrap()
    }

    fn state() -> SessionState {
        serde_json::from_value(serde_json::json!({
            "initialize_params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}
            }
        }))
        .unwrap()
    }

    const A: &str = "a:q83vEi0HWbJ1VdA+Z2fQ6l1lOC6n2b8dNq1uKx0sKjI=";
    const B: &str = "b:Jb0dY1-7gHq_WZ2o5ZtC8p3z6w9bX4nL2mVyQeRk0sA";

    #[test]
    fn seals_and_opens_with_any_key_of_the_ring() {
        let old = sessions(A, Duration::from_secs(60));
        let id = old.seal("local-1", &state()).unwrap();
        assert!(id.starts_with("local-1.a."), "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_graphic()), "{id}");
        let rotated = sessions(&format!("{B},{A}"), Duration::from_secs(60));
        let opened = rotated.open(&id).unwrap();
        assert_eq!(opened.local, "local-1");
        assert_eq!(opened.state.initialize_params.client_info.name, "t");
        assert!(rotated.seal("x", &state()).unwrap().starts_with("x.b."));
    }

    #[test]
    fn refuses_what_it_cannot_verify() {
        let s = sessions(A, Duration::from_secs(60));
        let id = s.seal("local-1", &state()).unwrap();
        // Moved to another session id.
        let moved = id.replacen("local-1", "local-2", 1);
        assert!(matches!(s.open(&moved), Err(OpenError::Forged)));
        // A flipped character in the ciphertext.
        let mut tampered = id.clone().into_bytes();
        let last = tampered.len() - 5;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(s.open(&tampered), Err(OpenError::Forged)));
        // Another key under the same id.
        let other = sessions(
            &format!("a:{}", B.split_once(':').unwrap().1),
            Duration::from_secs(60),
        );
        assert!(matches!(other.open(&id), Err(OpenError::Forged)));
        assert!(matches!(
            sessions(B, Duration::from_secs(60)).open(&id),
            Err(OpenError::UnknownKey(_))
        ));
        for junk in ["", "plain-uuid", "x.a.", "x.a.!!!", ".a.AAAA"] {
            assert!(s.open(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn expires_after_its_lifetime() {
        let s = sessions(A, Duration::from_secs(60));
        let id = s.seal_at("l", &state(), 1_000).unwrap();
        assert!(s.open_at(&id, 60_999).is_ok());
        assert!(matches!(s.open_at(&id, 61_000), Err(OpenError::Expired)));
    }

    #[test]
    fn ended_sessions_stay_ended_here() {
        let s = sessions(A, Duration::from_secs(60));
        let id = s.seal("l", &state()).unwrap();
        let other = s.seal("m", &state()).unwrap();
        let expires = s.open(&id).unwrap().expires_ms;
        s.end("l", expires);
        assert!(matches!(s.open(&id), Err(OpenError::Ended)));
        assert!(s.open(&other).is_ok());
        // Bounded: the oldest-expiring entry makes room.
        for n in 0..MAX_ENDED_SESSIONS {
            s.end(&format!("x{n}"), u64::MAX);
        }
        assert_eq!(s.lock_ended().len(), MAX_ENDED_SESSIONS);
        assert!(s.open(&id).is_ok());
    }

    #[test]
    fn oversized_parameters_are_refused() {
        let s = sessions(A, Duration::from_secs(60));
        let mut big = state();
        big.initialize_params.client_info.name = "x".repeat(MAX_SEALED_ID_LEN);
        assert!(matches!(s.seal("l", &big), Err(SealError::TooLarge(_))));
    }

    #[tokio::test]
    async fn the_store_sees_only_its_own_request() {
        let s = sessions(A, Duration::from_secs(60));
        assert!(s.load("l").await.unwrap().is_none());
        assert!(s.store("l", &state()).await.is_err());
        let loaded = carry(Carried::opened("l".into(), state()), async {
            (s.load("other").await.unwrap(), s.load("l").await.unwrap())
        })
        .await;
        assert!(loaded.0.is_none() && loaded.1.is_some());
        let mut stored = std::pin::pin!(carry(Carried::default(), async {
            s.store("l", &state()).await.unwrap();
        }));
        stored.as_mut().await;
        let carried = stored.as_mut().take_value().unwrap().into_inner();
        assert!(carried.into_stored().is_some());
    }
}
