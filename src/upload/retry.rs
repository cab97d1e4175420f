//! What to do with an answer, and when to try again: pure functions, no IO.

use std::time::Duration;

/// The uploader's verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 201 (or another 2xx): the server stored the recording under this id.
    Accepted {
        /// The id the server returned (empty if its answer had none).
        id: String,
    },
    /// 400, 403, 409 (and other refusals that retrying cannot fix): the
    /// recording goes to `failed/`.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The API's `reason` code (400 only).
        reason: Option<i64>,
        /// The server's message, or the status text.
        message: String,
    },
    /// 401: the credentials are wrong or missing; keep and retry slowly.
    Unauthorized {
        /// What the server said.
        message: String,
    },
    /// 5xx, timeouts, connection errors, unexpected answers: retry with backoff.
    Retry {
        /// Why, for the log and the summary.
        why: String,
    },
}

/// Longest server message kept (the rest is cut).
const MAX_MESSAGE: usize = 1000;

/// Classifies an HTTP answer from its status and (the start of) its body.
pub fn classify(status: u16, body: &[u8]) -> Verdict {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref().and_then(|v| v.get(name));
    let message = || {
        let text = match field("message").and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None => String::from_utf8_lossy(body).trim().to_string(),
        };
        let text = if text.is_empty() {
            status_text(status).to_string()
        } else {
            text
        };
        truncate(text)
    };
    match status {
        // The API answers 201; any 2xx means the server took it, and
        // retrying would only make duplicates.
        200..=299 => Verdict::Accepted {
            id: field("id")
                .and_then(|id| match id {
                    serde_json::Value::String(s) => Some(truncate(s.clone())),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .unwrap_or_default(),
        },
        400 | 403 | 409 | 413 | 415 | 422 => Verdict::Rejected {
            status,
            reason: field("reason").and_then(|r| r.as_i64()),
            message: message(),
        },
        401 => Verdict::Unauthorized { message: message() },
        _ => Verdict::Retry {
            why: format!("HTTP {status} {}: {}", status_text(status), message()),
        },
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// A short name for the statuses of the API.
pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Capped exponential backoff with jitter: the n-th delay is drawn
/// uniformly from `[d/2, d]` where `d = min(cap, initial * 2^n)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `initial`, never above `cap`; `seed` feeds the
    /// jitter (any value; different per recording so retries spread out).
    pub fn new(initial: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            cap: cap.max(initial),
            failures: 0,
            rng: seed | 1,
        }
    }

    /// Failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let shift = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let full = self
            .initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap);
        let nanos = u64::try_from(full.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        let jitter = if half == 0 {
            0
        } else {
            self.next_random() % (half + 1)
        };
        Duration::from_nanos(half + jitter)
    }

    /// Starts over (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keeps_the_returned_id() {
        let v = classify(201, br#"{"id":"f20850dd-6074-4c9f-8973-24381962ac6f"}"#);
        assert_eq!(
            v,
            Verdict::Accepted {
                id: "f20850dd-6074-4c9f-8973-24381962ac6f".into()
            }
        );
        assert_eq!(classify(201, b""), Verdict::Accepted { id: String::new() });
    }

    #[test]
    fn permanent_refusals_carry_reason_and_message() {
        let v = classify(400, br#"{"reason":1,"message":"duration is not ISO 8601"}"#);
        assert_eq!(
            v,
            Verdict::Rejected {
                status: 400,
                reason: Some(1),
                message: "duration is not ISO 8601".into()
            }
        );
        for status in [403, 409] {
            match classify(status, b"no") {
                Verdict::Rejected {
                    status: s,
                    reason: None,
                    message,
                } => {
                    assert_eq!(s, status);
                    assert_eq!(message, "no");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unauthorized_and_server_errors_are_kept() {
        assert!(matches!(classify(401, b""), Verdict::Unauthorized { .. }));
        for status in [500, 501, 502, 503, 404, 429, 302] {
            assert!(
                matches!(classify(status, b"x"), Verdict::Retry { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn hostile_bodies_are_bounded() {
        let body = vec![b'\xC3'; 10_000];
        let Verdict::Rejected { message, .. } = classify(400, &body) else {
            panic!()
        };
        assert!(message.len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 42);
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let bounds = [100u64, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (d, max) in delays.iter().zip(bounds) {
            assert!(*d <= Duration::from_millis(max), "{d:?} > {max}");
            assert!(*d >= Duration::from_millis(max / 2), "{d:?} < {max}/2");
        }
        assert_eq!(b.failures(), 8);
        // Jitter: two seeds give different sequences.
        let mut c = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 7);
        let other: Vec<Duration> = (0..8).map(|_| c.next_delay()).collect();
        assert_ne!(delays, other);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn backoff_never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300), 1);
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(300));
        }
    }
}
