//! Identifiers that appear in logs and must be redacted there.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A LINE user id (`U` + 32 hex digits). Personal data: `Display` and `Debug` show only a short
/// prefix and suffix (`U1a2b…9f0e`), so a user id never lands in full in a log file.
/// [`LineUserId::as_str`] gives the full id for API calls and storage.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LineUserId(String);

impl LineUserId {
    pub fn new(id: impl Into<String>) -> Self {
        LineUserId(id.into())
    }

    /// Accepts only well-formed ids: `U` followed by 32 lowercase hex digits.
    pub fn parse(id: &str) -> Option<Self> {
        is_line_user_id(id).then(|| LineUserId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used in logs.
    pub fn redacted(&self) -> String {
        redact_user_id(&self.0)
    }
}

/// Whether `id` is a well-formed LINE user id: `U` followed by 32 lowercase hex digits.
pub fn is_line_user_id(id: &str) -> bool {
    id.len() == 33
        && id.starts_with('U')
        && id[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `U1a2b…9f0e` for a LINE user id; other strings keep at most their first 5 characters.
pub fn redact_user_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 9 {
        return format!("{}…", chars.iter().take(1).collect::<String>());
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

impl fmt::Display for LineUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for LineUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LineUserId({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_redacted_in_display_and_debug() {
        let id = LineUserId::parse("U4af4980629a0b1c2d3e4f5a6b7c8d9e0").unwrap();
        for printed in [format!("{id}"), format!("{id:?}")] {
            assert!(
                !printed.contains("4af4980629a0b1c2d3e4f5a6b7c8d9e0"),
                "{printed}"
            );
            assert!(printed.contains("U4af4…d9e0"), "{printed}");
        }
        assert_eq!(id.as_str(), "U4af4980629a0b1c2d3e4f5a6b7c8d9e0");
    }

    #[test]
    fn malformed_user_ids_are_rejected() {
        assert!(LineUserId::parse("U123").is_none());
        assert!(LineUserId::parse("X4af4980629a0b1c2d3e4f5a6b7c8d9e0").is_none());
        assert!(LineUserId::parse("U4AF4980629A0B1C2D3E4F5A6B7C8D9E0").is_none());
    }
}
