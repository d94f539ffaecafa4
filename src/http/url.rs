//! The checks a request passes before anything is sent: the URL (absolute `http`/`https`
//! with a host and a valid port) and the header fields (names, values, and the ones the client
//! manages itself). Messages never repeat the URL, which may hold credentials.

use ureq::http::Uri;

/// Headers that describe the connection or the message framing. The client
/// computes them itself; letting a caller set them would corrupt the exchange.
const MANAGED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// Parse and check a webhook URL; the error text never repeats the URL.
pub(super) fn parse_url(s: &str) -> Result<Uri, String> {
    let s = s.trim();
    if !s.contains("://") {
        return Err("URL has no scheme (expected http:// or https://)".to_owned());
    }
    let uri: Uri = s
        .parse()
        .map_err(|_| "URL is not a valid absolute URL".to_owned())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        None => return Err("URL has no scheme (expected http:// or https://)".to_owned()),
        Some(_) => return Err("URL scheme must be http or https".to_owned()),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| "URL has no host".to_owned())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err("URL has no host".to_owned());
    }
    // http::Uri accepts an out-of-range port and then reports no port at
    // all, which would silently send to the default port instead.
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, hp)| hp);
    let after_host = match host_port.rfind(']') {
        Some(i) => &host_port[i + 1..],
        None => host_port,
    };
    if let Some((_, port)) = after_host.rsplit_once(':')
        && !port.is_empty()
    {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err("URL port must be between 1 and 65535".to_owned()),
        }
    }
    Ok(uri)
}

/// Check that `s` is an absolute `http`/`https` URL with a host.
///
/// The error message says what is wrong without repeating the URL, so it is
/// safe to show even when the URL holds credentials.
pub fn check_url(s: &str) -> Result<(), String> {
    parse_url(s).map(|_| ())
}

/// `host:port` for messages: no userinfo, no path, no query.
pub(super) fn target_of(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    format!("{host}:{port}")
}

/// `scheme://host:port/path` of a URL for Debug output, or a placeholder.
pub(super) fn redacted_url(s: &str) -> String {
    match parse_url(s) {
        Ok(uri) => format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("?"),
            target_of(&uri),
            uri.path()
        ),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// A URL as it may be shown to anyone: scheme, host and port as they are, every path segment
/// and query value replaced by `***` (Slack, Teams and the like carry their secret there), the
/// user name kept and a password masked, the fragment dropped. The path's shape stays visible
/// (`https://hooks.slack.com/***/***/***/***`), which tells one endpoint from another. A URL
/// that does not parse shows as `***`.
pub fn masked_url(s: &str) -> String {
    let Ok(uri) = parse_url(s) else {
        return "***".to_owned();
    };
    let authority = uri.authority().map_or("", |a| a.as_str());
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let name = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{name}:***@")
            } else {
                format!("{name}@")
            };
            (shown, hp)
        }
        None => (String::new(), authority),
    };
    let path: String = uri
        .path()
        .split('/')
        .map(|seg| if seg.is_empty() { "" } else { "***" })
        .collect::<Vec<_>>()
        .join("/");
    let query = uri.query().map(|q| {
        let fields: Vec<String> = q
            .split('&')
            .map(|field| match field.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => "***".to_owned(),
            })
            .collect();
        format!("?{}", fields.join("&"))
    });
    format!(
        "{}://{user}{host_port}{path}{}",
        uri.scheme_str().unwrap_or("?"),
        query.unwrap_or_default()
    )
}

/// `text` with every occurrence of each secret (of at least 4 characters: shorter ones would
/// mask ordinary words) replaced by `***`: response excerpts and errors are stored and shown,
/// and an endpoint may echo what it was sent.
pub fn scrub_secrets(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

pub(super) fn check_headers(headers: &[(String, String)]) -> Result<(), String> {
    for (i, (name, value)) in headers.iter().enumerate() {
        // An invalid name is not echoed: it might be a whole pasted
        // "Authorization: Bearer ..." line.
        if !valid_header_name(name) {
            return Err(format!("header #{} has an invalid name", i + 1));
        }
        let shown: String = name.chars().take(64).collect();
        if MANAGED_HEADERS.iter().any(|m| m.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "header {shown} is set by the HTTP client and cannot be overridden"
            ));
        }
        if !valid_header_value(value) {
            return Err(format!(
                "header {shown} has an invalid value (control characters such as CR, LF or NUL are not allowed)"
            ));
        }
    }
    Ok(())
}

/// Whether `s` is a valid header field name (an RFC 9110 `token`).
pub fn valid_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Whether `s` can be sent as a header field value: visible ASCII, space,
/// tab and non-ASCII (obs-text) are allowed; CR, LF, NUL and the other
/// control characters are not (they would allow header injection).
pub fn valid_header_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        for ok in [
            "Content-Type",
            "authorization",
            "X-Unleash-Signature",
            "x_y",
            "!#$%&'*+-.^_`|~09azAZ",
        ] {
            assert!(valid_header_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            "X Bad",
            "X:Bad",
            "X\r\nInjected",
            "é",
            "a/b",
            "(x)",
            "a\"b",
            "a\tb",
            "a;b",
            "x{",
            "a@b",
            "a=b",
            "a,b",
        ] {
            assert!(!valid_header_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_values() {
        for ok in [
            "",
            "application/json",
            "Bearer abc.def",
            "a\tb",
            " x ",
            "café",
            "~!@#$%^&*()",
        ] {
            assert!(valid_header_value(ok), "{ok:?}");
        }
        for bad in [
            "a\rb",
            "a\nb",
            "a\0b",
            "x\r\nInjected: 1",
            "\u{1}",
            "a\u{7f}",
        ] {
            assert!(!valid_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "http://example.com",
            "https://example.com/hook?x=1",
            "HTTPS://Example.com:8443/a/b",
            "http://127.0.0.1:1/",
            "http://[::1]:8080/x",
            "https://user:pw@example.com/",
            " http://example.com/ ",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok:?}");
        }
        let cases = [
            ("", "no scheme"),
            ("example.com/hook", "no scheme"),
            ("ftp://example.com/", "http or https"),
            ("file:///etc/passwd", "not a valid"),
            ("http:///x", "not a valid"),
            ("/relative", "no scheme"),
            ("http://exa mple.com/", "not a valid"),
            ("http://h:99999/", "port"),
            ("http://h:0/", "port"),
        ];
        for (url, want) in cases {
            let err = check_url(url).expect_err(url);
            assert!(err.contains(want), "{url:?}: {err}");
        }
        // Never echoes the URL or its credentials.
        for url in [
            "ftp://alice:s3cr3t@example.com/?token=t0k3n",
            "alice:s3cr3t@example.com",
            "http://alice:s3cr3t@example.com:70000/",
            "http://alice:s3cr3t@exa mple.com/",
        ] {
            let err = check_url(url).expect_err(url);
            assert!(
                !err.contains("s3cr3t") && !err.contains("alice") && !err.contains("t0k3n"),
                "{err}"
            );
        }
    }
}

#[cfg(test)]
mod masking_tests {
    use super::*;

    #[test]
    fn urls_show_their_shape_not_their_secrets() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/***/***/***/***",
            ),
            (
                "https://example.com:8443/hook?code=SECRET&x=1",
                "https://example.com:8443/***?code=***&x=***",
            ),
            (
                "http://user:pw@127.0.0.1:9/a/",
                "http://user:***@127.0.0.1:9/***/",
            ),
            ("http://token@h/", "http://token@h/"),
            ("https://h", "https://h/"),
            ("not a url", "***"),
        ] {
            assert_eq!(masked_url(url), shown, "{url}");
        }
    }

    #[test]
    fn scrub_masks_every_occurrence() {
        let secrets = vec!["Bearer s3cr3t".to_string(), "abc".to_string()];
        assert_eq!(
            scrub_secrets(
                "got Bearer s3cr3t twice: Bearer s3cr3t; abc stays",
                &secrets
            ),
            "got *** twice: ***; abc stays"
        );
    }
}
