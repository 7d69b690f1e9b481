//! Which `Authorization` header a Label Studio API key asks for, decided the way Label Studio's
//! own SDK decides (label-studio-sdk 2.x, `tokens/client_ext.py` `TokensClientExt`):
//!
//! - a key that is not a JWT is a legacy token: `Authorization: Token KEY`;
//! - a JWT is a personal access token, i.e. a refresh token: the SDK refuses one without `exp`
//!   or past it, and otherwise exchanges it at `POST /api/token/refresh/` (`{"refresh": KEY}` →
//!   `{"access": …}`) for a short-lived access token sent as `Authorization: Bearer ACCESS`,
//!   refreshed again when that one expires. A JWT whose `token_type` claim is `access` is
//!   already an access token and is sent as it is (the SDK's own CLI does the same).
//!
//! The JWT is only decoded, never verified: the server verifies it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// What kind of key `LABEL_STUDIO_API_KEY` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A legacy token (not a JWT): sent as `Token KEY`.
    Legacy,
    /// A personal access token (a JWT refresh token) valid until `expires` (Unix seconds).
    Refresh {
        /// The `exp` claim.
        expires: u64,
    },
    /// A JWT access token, sent as `Bearer KEY` until `expires` (Unix seconds).
    Access {
        /// The `exp` claim.
        expires: u64,
    },
}

/// The claims of a JWT (its middle segment), or `None` when `token` is not a JWT (three
/// base64url segments whose first two are JSON objects).
pub fn jwt_claims(token: &str) -> Option<Map<String, Value>> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let object = |segment: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    object(parts[0])?;
    object(parts[1])
}

/// Classifies `key` at time `now` (Unix seconds); a JWT without `exp` or past it is refused
/// with the SDK's reason, since the server would refuse it too.
pub fn classify(key: &str, now: u64) -> Result<KeyKind> {
    let Some(claims) = jwt_claims(key) else {
        return Ok(KeyKind::Legacy);
    };
    let Some(expires) = claims.get("exp").and_then(Value::as_f64) else {
        return Err(Error::Usage(
            "LABEL_STUDIO_API_KEY is a JWT without an expiry, which Label Studio does not accept: \
             create a new personal access token (Account & Settings)"
                .into(),
        ));
    };
    let expires = expires.max(0.0) as u64;
    if expires <= now {
        return Err(Error::Usage(format!(
            "LABEL_STUDIO_API_KEY: the personal access token expired {} s ago: create a new one \
             (Account & Settings)",
            now - expires
        )));
    }
    Ok(match claims.get("token_type").and_then(Value::as_str) {
        Some("access") => KeyKind::Access { expires },
        _ => KeyKind::Refresh { expires },
    })
}

/// The `exp` claim of a JWT access token the server handed out, if it has one.
pub fn expiry(token: &str) -> Option<u64> {
    jwt_claims(token)?
        .get("exp")
        .and_then(Value::as_f64)
        .map(|e| e.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let seg = |s: &str| URL_SAFE_NO_PAD.encode(s.as_bytes());
        format!(
            "{}.{}.{}",
            seg(r#"{"alg":"HS256","typ":"JWT"}"#),
            seg(claims),
            "c2lnbmF0dXJl"
        )
    }

    #[test]
    fn legacy_tokens_are_not_jwts() {
        assert_eq!(
            classify("0123456789abcdef0123456789abcdef01234567", 10).unwrap(),
            KeyKind::Legacy
        );
        // Dots alone do not make a JWT: the segments must decode to JSON objects.
        assert_eq!(classify("a.b.c", 10).unwrap(), KeyKind::Legacy);
        assert_eq!(classify(&jwt("[1]"), 10).unwrap(), KeyKind::Legacy);
    }

    #[test]
    fn jwts_are_refresh_tokens_unless_they_say_access() {
        let pat = jwt(r#"{"token_type":"refresh","exp":2000,"user_id":1}"#);
        assert_eq!(
            classify(&pat, 1000).unwrap(),
            KeyKind::Refresh { expires: 2000 }
        );
        let access = jwt(r#"{"token_type":"access","exp":2000}"#);
        assert_eq!(
            classify(&access, 1000).unwrap(),
            KeyKind::Access { expires: 2000 }
        );
        assert_eq!(expiry(&access), Some(2000));
        assert_eq!(expiry("legacy"), None);
    }

    #[test]
    fn expired_or_unbounded_jwts_are_refused() {
        let old = jwt(r#"{"token_type":"refresh","exp":900}"#);
        let e = classify(&old, 1000).unwrap_err().to_string();
        assert!(e.contains("expired 100 s ago"), "{e}");
        let forever = jwt(r#"{"token_type":"refresh"}"#);
        let e = classify(&forever, 1000).unwrap_err().to_string();
        assert!(e.contains("without an expiry"), "{e}");
    }
}
