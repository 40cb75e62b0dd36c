//! When an access token is renewed: pure arithmetic on instants, for the
//! token cache (`oauth::TokenCache`) and for `watch`, which ends a session
//! before its token runs out and logs in again with a fresh one.

use std::time::{Duration, Instant};

/// What a token response says of the token's life (RFC 6749 5.1
/// `expires_in`), counted from when the request was sent, so that the time
/// the answer took is on the safe side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub requested: Instant,
    pub expires_in: Option<Duration>,
}

/// The life assumed when a provider does not say (RFC 6749 5.1 leaves
/// `expires_in` optional): Google's and Microsoft's is an hour. Should a
/// token die sooner, the login with it fails and a fresh one is asked for
/// (`commands::open_session_with`).
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);

/// The share of its life after which a token is renewed: four fifths, so
/// 48 minutes of an hour's token, leaving 12 for a pass that is under way
/// when the renewal falls due to finish with the old one.
const RENEW_AT_PERCENT: u32 = 80;

impl Lifetime {
    pub fn life(&self) -> Duration {
        self.expires_in.unwrap_or(ASSUMED_LIFETIME)
    }

    /// When the token is no longer used for a new login, and a session
    /// logged in with it is ended (by `watch`) to log in afresh.
    pub fn renew_at(&self) -> Instant {
        self.requested + self.life() * RENEW_AT_PERCENT / 100
    }

    /// When the provider stops accepting it.
    pub fn expires_at(&self) -> Instant {
        self.requested + self.life()
    }

    /// Is the token still good for a login at `now`?
    pub fn usable(&self, now: Instant) -> bool {
        now < self.renew_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_at_four_fifths_of_its_life() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (expires_in, renew after, expires after)
        let cases = [
            (Some(s(3600)), s(2880), s(3600)),
            (Some(s(3599)), ms(2_879_200), s(3599)),
            (Some(s(5)), s(4), s(5)),
            (Some(s(1)), ms(800), s(1)),
            (Some(s(0)), s(0), s(0)),
            (None, s(2880), s(3600)),
        ];
        for (expires_in, renew, expire) in cases {
            let l = Lifetime {
                requested: t0,
                expires_in,
            };
            assert_eq!(l.renew_at() - t0, renew, "{expires_in:?}");
            assert_eq!(l.expires_at() - t0, expire, "{expires_in:?}");
            assert!(l.renew_at() <= l.expires_at());
        }
    }

    #[test]
    fn a_token_is_usable_until_its_renewal_falls_due() {
        let t0 = Instant::now();
        let l = Lifetime {
            requested: t0,
            expires_in: Some(Duration::from_secs(10)),
        };
        let cases = [
            (0, true),
            (7_999, true),
            (8_000, false),
            (9_999, false),
            (60_000, false),
        ];
        for (after_ms, usable) in cases {
            assert_eq!(
                l.usable(t0 + Duration::from_millis(after_ms)),
                usable,
                "{after_ms} ms"
            );
        }
        // A token that was dead on arrival is never used.
        let dead = Lifetime {
            requested: t0,
            expires_in: Some(Duration::ZERO),
        };
        assert!(!dead.usable(t0));
    }
}
