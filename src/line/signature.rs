//! `X-Line-Signature`: Base64(HMAC-SHA256(key = channel secret, data = the raw request body)).
//!
//! Computed over the bytes exactly as received — never over parsed and re-serialised JSON, which changes
//! escapes such as `\uD83E\uDD28` (line-bot-sdk-nodejs#922). The comparison is constant-time (`subtle`). A
//! missing header is a failure, not a skip (line-bot-sdk-nodejs#25).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a webhook's signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Line-Signature header is missing")]
    Missing,
    #[error("the X-Line-Signature header is not Base64 of 32 bytes")]
    Malformed,
    #[error("the X-Line-Signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// Metrics label.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// The signature LINE would send for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Verifies `header` (the `X-Line-Signature` value, if any) against `body`.
pub fn verify(secret: &str, body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim_ascii())
        .map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example in LINE's docs (messaging-api/verify-webhook-signature).
    const SECRET: &str = "8c570fa6dd201bb328f1c1eac23a96d8";
    const BODY: &[u8] = br#"{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}"#;
    const SIG: &str = "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=";

    #[test]
    fn lines_documented_test_vector_verifies() {
        assert_eq!(sign(SECRET, BODY), SIG);
        assert_eq!(verify(SECRET, BODY, Some(SIG.as_bytes())), Ok(()));
    }

    #[test]
    fn a_body_changed_by_one_byte_is_rejected() {
        let mut body = BODY.to_vec();
        body[20] ^= 1;
        assert_eq!(
            verify(SECRET, &body, Some(SIG.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn re_serialised_json_with_different_escapes_is_rejected() {
        let raw = br#"{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[{"text":"\uD83E\uDD28"}]}"#;
        let sig = sign(SECRET, raw);
        let reparsed: serde_json::Value = serde_json::from_slice(raw).unwrap();
        let reserialised = serde_json::to_vec(&reparsed).unwrap();
        assert_ne!(reserialised.as_slice(), raw.as_slice());
        assert_eq!(verify(SECRET, raw, Some(sig.as_bytes())), Ok(()));
        assert_eq!(
            verify(SECRET, &reserialised, Some(sig.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_wrong_secret_is_rejected() {
        assert_eq!(
            verify("another-channel-secret", BODY, Some(SIG.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_missing_or_garbled_header_is_rejected() {
        assert_eq!(verify(SECRET, BODY, None), Err(SignatureError::Missing));
        assert_eq!(
            verify(SECRET, BODY, Some(b"%%%")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, BODY, Some(b"c2hvcnQ=")),
            Err(SignatureError::Malformed)
        );
    }
}
