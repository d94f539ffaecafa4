//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), symmetric scheme `v1`.
//!
//! - A secret is `whsec_` followed by the base64 of 24 to 64 random bytes; the HMAC key is the
//!   decoded bytes, not the text.
//! - The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the timestamp in whole
//!   seconds since the Unix epoch, the body exactly the bytes sent.
//! - The `webhook-signature` header is a space-separated list of
//!   `v1,<base64 of HMAC-SHA256(key, content)>`, one per secret, so that during a rotation both
//!   the old and the new secret sign and a receiver that knows either accepts the request.
//!
//! Base64 is the standard alphabet with padding, as the specification and its reference
//! implementation (`standardwebhooks` on PyPI) write it; on input, missing padding is accepted
//! as the reference implementation accepts it. Nothing here ever puts a secret, or a part of
//! one, into an error message.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix that marks a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest key the specification allows (192 bits).
pub const MIN_SECRET_BYTES: usize = 24;

/// Longest key the specification allows (512 bits, SHA-256's block size).
pub const MAX_SECRET_BYTES: usize = 64;

/// Key length of [`generate_secret`] (256 bits, HMAC-SHA256's output size).
pub const GENERATED_SECRET_BYTES: usize = 32;

/// The standard alphabet, padding optional on input (the reference implementation appends
/// `==` before decoding, so unpadded secrets work there too); trailing bits must be zero.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The HMAC key behind a `whsec_<base64>` secret.
///
/// Surrounding whitespace (a pasted newline) is ignored. The key must decode to 24..=64 bytes,
/// the range the specification gives. The error says what is wrong with the shape of the value
/// and never includes the value or any part of it.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, String> {
    let Some(encoded) = s.trim().strip_prefix(SECRET_PREFIX) else {
        return Err(format!(
            "a webhook secret must start with \"{SECRET_PREFIX}\" followed by base64 \
             (generate one with generate_secret)"
        ));
    };
    let key = LENIENT.decode(encoded).map_err(|_| {
        format!("the part of the webhook secret after \"{SECRET_PREFIX}\" is not valid base64")
    })?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        return Err(format!(
            "a webhook secret must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, \
             this one decodes to {} bytes",
            key.len()
        ));
    }
    Ok(key)
}

/// A new secret: `whsec_` + base64 of 32 bytes from the operating system's CSPRNG.
///
/// Fails only when the operating system cannot provide random bytes (`getrandom(2)` failing);
/// it never falls back to weaker randomness.
pub fn generate_secret() -> Result<String, String> {
    let mut key = [0u8; GENERATED_SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| "the operating system could not provide random bytes".to_string())?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` header value: `v1,<base64>` for each secret, in the given order,
/// separated by single spaces (empty when there are no secrets).
///
/// `webhook_id` and `timestamp` must be the values sent in the `webhook-id` and
/// `webhook-timestamp` headers, and `body` the exact bytes sent.
pub fn signature_header(
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[Vec<u8>],
) -> String {
    let prefix = format!("{webhook_id}.{timestamp}.");
    let mut header = String::with_capacity(secrets.len() * 48);
    for secret in secrets {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(prefix.as_bytes());
        ctx.update(body);
        let tag = ctx.sign();
        if !header.is_empty() {
            header.push(' ');
        }
        header.push_str("v1,");
        STANDARD.encode_string(tag.as_ref(), &mut header);
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::js::{Value, stringify};
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// The test vector of the reference implementation (`test_sign_function` in
    /// standard-webhooks' `libraries/python/tests/test_webhooks.py`).
    const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const REF_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const REF_TS: i64 = 1_614_265_330;
    const REF_BODY: &str = r#"{"test": 2432232314}"#;
    const REF_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn reference_vector() {
        let key = parse_secret(REF_SECRET).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(
            signature_header(REF_ID, REF_TS, REF_BODY.as_bytes(), &[key]),
            REF_SIG
        );
    }

    /// Vectors computed independently with Python's `hmac` + `base64` (key = 32 bytes 0..=31,
    /// and 64 bytes of 0xAB), so the HMAC, the content layout and the encoding are all pinned.
    #[test]
    fn known_vectors() {
        let k32: Vec<u8> = (0u8..32).collect();
        let k64 = vec![0xABu8; 64];
        let s32 = format!("whsec_{}", STANDARD.encode(&k32));
        assert_eq!(s32, "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        assert_eq!(parse_secret(&s32).unwrap(), k32);
        let body = "{\"id\":14,\"type\":\"feature-created\",\"text\":\"é 😀\"}";
        assert_eq!(
            signature_header(
                "msg_1",
                1_795_729_242,
                body.as_bytes(),
                std::slice::from_ref(&k32)
            ),
            "v1,Is0lL6YKQASxFry8aq4Nm3SEUKjXcaAuP0k3BzDUyng="
        );
        assert_eq!(
            signature_header(
                "msg_1",
                1_795_729_242,
                body.as_bytes(),
                std::slice::from_ref(&k64)
            ),
            "v1,JSzH+pp6BOXdLAtHQU5gUCJMGxMm+NTfRTsjUVTG2Yg="
        );
        // Rotation: one signature per secret, in order, space-separated.
        assert_eq!(
            signature_header("msg_1", 1_795_729_242, body.as_bytes(), &[k32, k64]),
            "v1,Is0lL6YKQASxFry8aq4Nm3SEUKjXcaAuP0k3BzDUyng= \
             v1,JSzH+pp6BOXdLAtHQU5gUCJMGxMm+NTfRTsjUVTG2Yg="
        );
        // Empty body, negative timestamp: still well defined.
        assert_eq!(
            signature_header("x", -1, b"", &[vec![0u8; 24]]),
            "v1,oguJxtgvR8ttgO0V85jmSfSIHX48OnnBlrg0+SEaz6c="
        );
        assert_eq!(signature_header("x", 0, b"", &[]), "");
    }

    #[test]
    fn secret_parsing() {
        // Padding optional, surrounding whitespace ignored.
        let padded = parse_secret("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let bare = parse_secret(" whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n").unwrap();
        assert_eq!(padded, bare);
        let sixty_four = format!("whsec_{}", STANDARD.encode([7u8; 64]));
        assert_eq!(parse_secret(&sixty_four).unwrap().len(), 64);

        let secretish = "whsec_Zq8!xV#kW9pLm2-Tt7_Qy4";
        let cases = [
            ("", "must start with"),
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
                "must start with",
            ),
            (
                "WHSEC_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
                "must start with",
            ),
            ("whsec_", "decodes to 0 bytes"),
            ("whsec_AAECAwQFBgcICQoLDA0ODxAREhMU", "decodes to 21 bytes"),
            (
                "whsec_AAECAwQFBgcI-QoLDA0ODxAREhMUFRYXGBkaGxwd",
                "not valid base64",
            ),
            (
                "whsec_AAECAwQF BgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
                "not valid base64",
            ),
            (
                "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd===",
                "not valid base64",
            ),
            (secretish, "not valid base64"),
        ];
        for (input, want) in cases {
            let err = parse_secret(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
            if let Some(tail) = input.strip_prefix("whsec_").filter(|t| t.len() > 5) {
                for window in tail.as_bytes().windows(6) {
                    let w = String::from_utf8_lossy(window);
                    assert!(!err.contains(&*w), "error leaks {w:?}: {err}");
                }
            }
        }
        let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert!(parse_secret(&long).unwrap_err().contains("65 bytes"));
    }

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(
            a.starts_with("whsec_") && a.len() == 6 + 44 && a.ends_with('='),
            "{a}"
        );
        assert_eq!(parse_secret(&a).unwrap().len(), GENERATED_SECRET_BYTES);
    }

    /// Verifies with `standardwebhooks.Webhook(secret).verify(body, headers)`; prints why not.
    const VERIFY_PY: &str = r#"
import json, sys
try:
    from standardwebhooks.webhooks import Webhook
except ImportError as e:
    print("MISSING: " + str(e))
    sys.exit(3)
req = json.load(sys.stdin)
try:
    Webhook(req["secret"]).verify(req["body"].encode("utf-8"), req["headers"], json_parse=False)
    print("OK")
except Exception as e:
    print("FAIL: %s: %s" % (type(e).__name__, e))
"#;

    fn python_verify(secret: &str, id: &str, ts: i64, body: &str, sig: &str) -> String {
        let python = std::env::var("UW_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let text = |s: &str| Value::String(s.to_string());
        let field = |k: &str, v: Value| (k.to_string(), v);
        let req = stringify(&Value::Object(vec![
            field("secret", text(secret)),
            field("body", text(body)),
            field(
                "headers",
                Value::Object(vec![
                    field("webhook-id", text(id)),
                    field("webhook-timestamp", text(&ts.to_string())),
                    field("webhook-signature", text(sig)),
                ]),
            ),
        ]));
        let hint = format!(
            "the interop test needs Python with the `standardwebhooks` package: \
             `pip install standardwebhooks` (or `python3 -m venv .venv && .venv/bin/pip install \
             standardwebhooks` and set UW_PYTHON=.venv/bin/python); UW_PYTHON is {python:?}"
        );
        let mut child = Command::new(&python)
            .args(["-c", VERIFY_PY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python:?}: {e}\n{hint}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(req.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!text.starts_with("MISSING"), "{text}\n{hint}");
        assert!(out.status.success(), "python failed: {text}\n{hint}");
        text
    }

    #[test]
    fn standardwebhooks_python_verifies_our_signatures() {
        // The reference verifier rejects timestamps more than 5 minutes from its clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let id = "01M8CWVDXY4DW93H0SA3HYV1BM-14";
        let body = r#"{"id":14,"type":"feature-created","createdBy":"admin","data":{"description":"Spike <b>flag</b> & \"quotes\" é 😀"}}"#;
        let old = generate_secret().unwrap();
        let new = generate_secret().unwrap();
        let old_key = parse_secret(&old).unwrap();
        let new_key = parse_secret(&new).unwrap();

        let single = signature_header(id, now, body.as_bytes(), std::slice::from_ref(&new_key));
        assert_eq!(python_verify(&new, id, now, body, &single), "OK");

        // Rotation: both sign, the receiver only knows the new one (second in the header).
        let both = signature_header(id, now, body.as_bytes(), &[old_key, new_key]);
        assert_eq!(both.split(' ').count(), 2);
        assert_eq!(python_verify(&new, id, now, body, &both), "OK");
        assert_eq!(python_verify(&old, id, now, body, &both), "OK");

        // And it really checks: a changed body, id, timestamp or secret fails.
        let fail = |r: String| assert!(r.starts_with("FAIL"), "{r}");
        fail(python_verify(
            &new,
            id,
            now,
            &body.replace("14", "15"),
            &single,
        ));
        fail(python_verify(&new, "other-id", now, body, &single));
        fail(python_verify(&new, id, now + 1, body, &single));
        fail(python_verify(&old, id, now, body, &single));

        // The reference vector, re-signed at the current time with the reference secret.
        let key = parse_secret(REF_SECRET).unwrap();
        let sig = signature_header(REF_ID, now, REF_BODY.as_bytes(), &[key]);
        assert_eq!(python_verify(REF_SECRET, REF_ID, now, REF_BODY, &sig), "OK");
    }
}
