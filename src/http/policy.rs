//! The destination policy (SSRF protection): which addresses a webhook may reach, and the
//! resolver that makes the client connect only to addresses it checked.
//!
//! Like Unleash 8.0.2+ (`validate-url.ts`), a webhook may not reach an
//! address that is not public unless the operator allows it
//! ([`DestinationPolicy`], set as [`ClientConfig::destination_policy`](super::ClientConfig::destination_policy);
//! the default refuses them all). Refused, after DNS resolution: private
//! (10/8, 172.16/12, 192.168/16, fc00::/7), loopback (127/8, ::1),
//! link-local (169.254/16 including the 169.254.169.254 cloud metadata
//! address, fe80::/10), unspecified and "this network" (0/8, ::), CGNAT
//! (100.64/10), 192.0.0/24, the documentation ranges (192.0.2/24,
//! 198.51.100/24, 203.0.113/24, 2001:db8::/32), benchmarking (198.18/15),
//! multicast (224/4, ff00::/8), reserved and broadcast (240/4), 6to4
//! (2002::/16) and 64:ff95::/96 (all as in Unleash). IPv4-mapped IPv6
//! addresses (`::ffff:a.b.c.d`) and NAT64 addresses (`64:ff9b::/96`) are
//! judged by the IPv4 address they carry. Beyond Unleash, the deprecated
//! IPv4-compatible (`::/96`) and site-local (`fec0::/10`) ranges and local-use
//! NAT64 (`64:ff9b:1::/48`) are refused too. A host name resolving to several
//! addresses is refused if any one of them is.
//!
//! DNS rebinding cannot bypass the check: the agent is built with a custom
//! [`ureq::unversioned::resolver::Resolver`] that resolves the host once,
//! checks every address and fails the request with
//! [`ErrorClass::Policy`] if one is refused; the connector then connects
//! only to the addresses this resolver returned, i.e. the checked ones.
//!
//! With a proxy (ureq 3 tunnels both `http` and `https` targets with
//! `CONNECT`) the proxy resolves the target itself. The proxy's own address
//! is trusted (it is the operator's setting); the target is checked by our
//! own lookup just before sending. The proxy's later lookup is not under our
//! control, so in that setup a DNS rebinding between the two lookups is not
//! prevented. A target allowed by host name (or `*`) is not looked up, so
//! hosts that only the proxy can resolve work when they are allowlisted.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::outcome::{ErrorClass, PolicyRefusal, describe_error};
use super::reactor;
use super::url::{parse_url, target_of};

/// Setting named in refusal messages, where the operator sets the allowlist.
pub const ALLOWLIST_SETTING: &str = "unleash_webhook.destination_allowlist";

/// How long [`check_destination`] waits for the DNS lookup.
const CHECK_RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which non-public destinations a webhook may reach (see the module docs
/// for the refused ranges). Public addresses are always allowed.
///
/// The default (also `parse("")`) allows no private-like address at all.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DestinationPolicy {
    /// `*`: every address is allowed.
    allow_all: bool,
    /// Host names allowed whatever they resolve to: lower case, without a
    /// trailing dot.
    hosts: Vec<String>,
    /// Allowed networks (single addresses are /32 or /128).
    nets: Vec<Cidr>,
}

impl DestinationPolicy {
    /// Parse an allowlist.
    ///
    /// `spec`: comma-separated entries: `*` (allow everything), a host name
    /// (exact, case-insensitive; allows that host whatever it resolves to),
    /// an IP address, or a CIDR (v4 or v6). Blank entries are ignored; an
    /// empty spec refuses all private-like addresses. Host bits of a CIDR
    /// are ignored (`10.1.2.3/8` means `10.0.0.0/8`). An IPv4 entry and its
    /// IPv4-mapped IPv6 form (`::ffff:10.0.0.1`) are the same: each allows
    /// both forms of the address.
    ///
    /// Returns `Err(message)` naming the first bad entry.
    pub fn parse(spec: &str) -> Result<DestinationPolicy, String> {
        let mut policy = DestinationPolicy::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| {
                let shown: String = entry.chars().take(64).collect();
                format!("invalid entry {shown:?} in the destination allowlist: {why}")
            };
            if entry == "*" {
                policy.allow_all = true;
            } else if let Some((addr, prefix)) = entry.split_once('/') {
                policy
                    .nets
                    .push(parse_cidr(addr, prefix).map_err(bad)?.unmapped());
            } else if let Some(ip) = parse_ip(entry) {
                policy.nets.push(Cidr::host(ip).unmapped());
            } else {
                policy.hosts.push(parse_host_entry(entry).map_err(bad)?);
            }
        }
        Ok(policy)
    }

    /// A policy that allows every destination (same as `parse("*")`).
    #[cfg(test)]
    pub fn allow_all() -> DestinationPolicy {
        DestinationPolicy {
            allow_all: true,
            ..DestinationPolicy::default()
        }
    }

    /// Checks an already-resolved address for `host` (the URL's host: a name
    /// or an IP literal, with or without IPv6 brackets). The resolver uses the
    /// parts; tests ask the whole question.
    #[cfg(test)]
    pub fn allows(&self, host: &str, addr: IpAddr) -> bool {
        self.allows_host(host) || self.refusal(addr).is_none()
    }

    /// Whether `host` is allowed whatever it resolves to.
    fn allows_host(&self, host: &str) -> bool {
        if self.allow_all {
            return true;
        }
        let host = normalize_host(host);
        !host.is_empty() && self.hosts.contains(&host)
    }

    /// Why `addr` is refused (ignoring host names), if it is.
    fn refusal(&self, addr: IpAddr) -> Option<Refusal> {
        if self.allow_all {
            return None;
        }
        let mapped = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let listed = self
            .nets
            .iter()
            .any(|n| n.contains(addr) || mapped.is_some_and(|m| n.contains(m)));
        if listed { None } else { refused_range(addr) }
    }

    /// Check every resolved address of `host`; the error names the host, the
    /// first refused address and why.
    fn check(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = IpAddr>,
    ) -> Result<(), PolicyRefusal> {
        if self.allows_host(host) {
            return Ok(());
        }
        for addr in addrs {
            if let Some(why) = self.refusal(addr) {
                let host = normalize_host(host);
                let message = if parse_ip(&host) == Some(addr) {
                    format!("{addr} is {why}; allow it with {ALLOWLIST_SETTING}")
                } else {
                    format!(
                        "{host} resolves to {addr}, which is {why}; allow the host or the address with {ALLOWLIST_SETTING}"
                    )
                };
                return Err(PolicyRefusal(message));
            }
        }
        Ok(())
    }
}

/// Resolves `url`'s host (port from the URL or the scheme default) and
/// checks every address against `policy`.
///
/// A host allowed by name (or `*`) is not looked up. The lookup is bounded
/// by a fixed 10 s. `Err` names the host and why it is refused or could not
/// be resolved (e.g. "127.0.0.1 is a loopback address; allow it with
/// unleash_webhook.destination_allowlist"); it never repeats the URL's
/// userinfo or query.
#[cfg(test)]
pub fn check_destination(url: &str, policy: &DestinationPolicy) -> Result<(), String> {
    check_destination_classified(url, policy).map_err(|(_, message)| message)
}

/// The policy's verdict on `url` at subscription time: `Some(why)` only when the policy
/// refuses it (or the URL is malformed). A host that does not resolve right now is not a
/// refusal: DNS can fail for a moment, and the worker checks every address again when it
/// connects.
pub fn destination_refusal(url: &str, policy: &DestinationPolicy) -> Option<String> {
    match check_destination_classified(url, policy) {
        Err((ErrorClass::Policy | ErrorClass::InvalidRequest, message)) => Some(message),
        _ => None,
    }
}

fn check_destination_classified(
    url: &str,
    policy: &DestinationPolicy,
) -> Result<(), (ErrorClass, String)> {
    let uri = parse_url(url).map_err(|e| (ErrorClass::InvalidRequest, e))?;
    let target = target_of(&uri);
    let start = Instant::now();
    let timeout = NextTimeout {
        after: CHECK_RESOLVE_TIMEOUT.into(),
        reason: ureq::Timeout::Resolve,
        ..NextTimeout::default()
    };
    precheck(policy, &uri, &ureq::config::Config::default(), timeout)
        .map_err(|e| describe_error(&e, &target, start.elapsed()))
}

/// Check a target that something else will resolve again (a proxy): look it
/// up unless its name is allowed anyway.
pub(super) fn precheck(
    policy: &DestinationPolicy,
    uri: &Uri,
    config: &ureq::config::Config,
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    if policy.allows_host(uri.host().unwrap_or("")) {
        return Ok(());
    }
    resolve_checked(policy, uri, config, timeout).map(|_| ())
}

/// Resolve `uri` once (ureq's own lookup, with its timeout handling) and
/// return the addresses only if the policy allows every one of them.
fn resolve_checked(
    policy: &DestinationPolicy,
    uri: &Uri,
    config: &ureq::config::Config,
    timeout: NextTimeout,
) -> Result<ResolvedSocketAddrs, ureq::Error> {
    let addrs = lookup(uri, config, timeout)?;
    policy
        .check(uri.host().unwrap_or(""), addrs.iter().map(SocketAddr::ip))
        .map_err(|r| ureq::Error::Other(Box::new(r)))?;
    Ok(addrs)
}

/// ureq's own lookup, with its timeout handling, on a thread of its own when called in the
/// sender's reactor (see [`reactor::blocking`]): `getaddrinfo` blocks. (ureq starts one more
/// for its timeout: two threads per lookup, once per host and [`RESOLVE_CACHE_TTL`].)
fn lookup(
    uri: &Uri,
    config: &ureq::config::Config,
    timeout: NextTimeout,
) -> Result<ResolvedSocketAddrs, ureq::Error> {
    let (uri, config) = (uri.clone(), config.clone());
    reactor::blocking(move || DefaultResolver::default().resolve(&uri, &config, timeout))
}

/// The agent's resolver: the addresses it returns are the only ones the
/// connector tries, so checking them here is what defeats DNS rebinding.
///
/// ureq resolves before it looks for a kept-alive connection, on every
/// request, and with a resolve timeout set it does each lookup on a new
/// thread: at thousands of requests a second that thread spawn was the
/// largest single cost in the worker's profile. So checked answers are kept
/// for [`RESOLVE_CACHE_TTL`]: still only checked addresses are returned, and
/// a DNS change is seen within that time (a kept-alive connection is reused
/// whatever DNS says, as before).
#[derive(Debug)]
pub(super) struct PolicyResolver {
    policy: Arc<DestinationPolicy>,
    cache: Mutex<HashMap<(String, u16), (Instant, ResolvedSocketAddrs)>>,
}

/// How long a checked DNS answer is reused.
const RESOLVE_CACHE_TTL: Duration = Duration::from_secs(5);
/// Endpoints are few; the cache is emptied rather than grown past this.
const RESOLVE_CACHE_MAX: usize = 1024;

impl PolicyResolver {
    pub(super) fn new(policy: Arc<DestinationPolicy>) -> PolicyResolver {
        PolicyResolver {
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // ureq asks for the proxy's own address through this resolver too.
        // It is the operator's setting and trusted; the target behind it was
        // checked in `Client::exchange`.
        if config.proxy().is_some_and(|p| p.uri() == uri) {
            return lookup(uri, config, timeout);
        }
        let key = (
            uri.host().unwrap_or("").to_ascii_lowercase(),
            uri.port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                }),
        );
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && let Some((at, addrs)) = cache.get(&key)
            && now.duration_since(*at) < RESOLVE_CACHE_TTL
        {
            return Ok(addrs.clone());
        }
        // Failures and refusals are not kept: the next request looks again.
        let addrs = resolve_checked(&self.policy, uri, config, timeout)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= RESOLVE_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (now, addrs.clone()));
        }
        Ok(addrs)
    }
}

/// An IP network: `addr` has no bits set past `prefix`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn new(addr: IpAddr, prefix: u8) -> Cidr {
        Cidr {
            addr: mask(addr, prefix),
            prefix,
        }
    }

    fn host(addr: IpAddr) -> Cidr {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, prefix }
    }

    /// An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96+n`) as the IPv4
    /// network it stands for; any other network unchanged.
    fn unmapped(self) -> Cidr {
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr::new(IpAddr::V4(v4), self.prefix - 96),
                None => self,
            },
            _ => self,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `ip` with every bit past `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// An IP literal, IPv6 with or without brackets.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn parse_cidr(addr: &str, prefix: &str) -> Result<Cidr, &'static str> {
    let ip = parse_ip(addr.trim()).ok_or("the part before '/' is not an IP address")?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.trim();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the prefix length after '/' is not a number");
    }
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(Cidr::new(ip, p)),
        _ if max == 32 => Err("the prefix length of an IPv4 CIDR must be 0 to 32"),
        _ => Err("the prefix length of an IPv6 CIDR must be 0 to 128"),
    }
}

/// Validate a host name entry and return it normalized.
fn parse_host_entry(entry: &str) -> Result<String, &'static str> {
    if entry.contains('*') {
        return Err("wildcards are not supported (use \"*\" alone, or list each host name)");
    }
    if entry.contains(':') || entry.contains('[') || entry.contains(']') {
        return Err("not a valid IP address");
    }
    let host = normalize_host(entry);
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("not a valid IPv4 address");
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if host.is_empty() || host.len() > 253 || !labels_ok {
        return Err("not a valid host name, IP address or CIDR");
    }
    Ok(host)
}

/// Lower case, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(host);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Why an address is refused unless allowed: the range it falls in and,
/// for IPv4 embedded in IPv6, how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Refusal {
    range: Range,
    embedded: Option<(&'static str, Ipv4Addr)>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some((how, v4)) => write!(f, "{how} of {v4}, {}", self.range.describe()),
            None => f.write_str(self.range.describe()),
        }
    }
}

/// The non-public ranges (module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Range {
    Unspecified,
    ThisNetwork,
    Loopback,
    Private,
    Metadata,
    LinkLocal,
    SharedCgnat,
    ProtocolAssignments,
    Documentation,
    Benchmarking,
    Multicast,
    Reserved,
    Broadcast,
    UniqueLocal,
    SiteLocal,
    Ipv4Compatible,
    SixToFour,
    Nat64,
}

impl Range {
    fn describe(self) -> &'static str {
        match self {
            Range::Unspecified => "an unspecified address",
            Range::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Range::Loopback => "a loopback address",
            Range::Private => "a private address",
            Range::Metadata => "the link-local cloud metadata address",
            Range::LinkLocal => "a link-local address",
            Range::SharedCgnat => "a carrier-grade NAT address (100.64.0.0/10)",
            Range::ProtocolAssignments => "an IETF protocol assignment address (192.0.0.0/24)",
            Range::Documentation => "a documentation address",
            Range::Benchmarking => "a benchmarking address (198.18.0.0/15)",
            Range::Multicast => "a multicast address",
            Range::Reserved => "a reserved address (240.0.0.0/4)",
            Range::Broadcast => "the broadcast address",
            Range::UniqueLocal => "a unique local (private) address",
            Range::SiteLocal => "a deprecated site-local address",
            Range::Ipv4Compatible => "a deprecated IPv4-compatible address",
            Range::SixToFour => "a 6to4 address",
            Range::Nat64 => "a NAT64 address outside the public well-known prefix",
        }
    }
}

fn refused_range(ip: IpAddr) -> Option<Refusal> {
    let plain = |range| Refusal {
        range,
        embedded: None,
    };
    match ip {
        IpAddr::V4(v4) => v4_range(v4).map(plain),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_range(v4).map(|range| Refusal {
                    range,
                    embedded: Some(("the IPv4-mapped form", v4)),
                });
            }
            // NAT64 well-known prefix 64:ff9b::/96: judged by the IPv4
            // address the translator would reach.
            if in_v6(v6, 0x0064_ff9b << 96, 96) {
                let v4 = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(0));
                return v4_range(v4).map(|range| Refusal {
                    range,
                    embedded: Some(("the NAT64 form", v4)),
                });
            }
            v6_range(v6).map(plain)
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    Cidr::new(IpAddr::V4(Ipv4Addr::from(net)), prefix).contains(IpAddr::V4(ip))
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u8) -> bool {
    Cidr::new(IpAddr::V6(Ipv6Addr::from(net)), prefix).contains(IpAddr::V6(ip))
}

fn v4_range(ip: Ipv4Addr) -> Option<Range> {
    const RANGES: [([u8; 4], u8, Range); 17] = [
        // Exact addresses first, then the blocks containing them.
        ([0, 0, 0, 0], 32, Range::Unspecified),
        ([0, 0, 0, 0], 8, Range::ThisNetwork),
        ([127, 0, 0, 0], 8, Range::Loopback),
        ([10, 0, 0, 0], 8, Range::Private),
        ([172, 16, 0, 0], 12, Range::Private),
        ([192, 168, 0, 0], 16, Range::Private),
        ([169, 254, 169, 254], 32, Range::Metadata),
        ([169, 254, 0, 0], 16, Range::LinkLocal),
        ([100, 64, 0, 0], 10, Range::SharedCgnat),
        ([192, 0, 0, 0], 24, Range::ProtocolAssignments),
        ([192, 0, 2, 0], 24, Range::Documentation),
        ([198, 51, 100, 0], 24, Range::Documentation),
        ([203, 0, 113, 0], 24, Range::Documentation),
        ([198, 18, 0, 0], 15, Range::Benchmarking),
        ([224, 0, 0, 0], 4, Range::Multicast),
        ([255, 255, 255, 255], 32, Range::Broadcast),
        ([240, 0, 0, 0], 4, Range::Reserved),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, range)| *range)
}

fn v6_range(ip: Ipv6Addr) -> Option<Range> {
    const RANGES: [(u128, u8, Range); 11] = [
        (0, 128, Range::Unspecified),
        (1, 128, Range::Loopback),
        // ::a.b.c.d (deprecated, RFC 4291 2.5.5.1).
        (0, 96, Range::Ipv4Compatible),
        (0xfe80 << 112, 10, Range::LinkLocal),
        (0xfec0 << 112, 10, Range::SiteLocal),
        (0xfc00 << 112, 7, Range::UniqueLocal),
        (0xff00 << 112, 8, Range::Multicast),
        (0x2001_0db8 << 96, 32, Range::Documentation),
        (0x2002 << 112, 16, Range::SixToFour),
        // Refused by Unleash as written in validate-url.ts.
        (0x0064_ff95 << 96, 96, Range::Nat64),
        // Local-use NAT64 (RFC 8215): may translate to private IPv4.
        (0x0064_ff9b_0001 << 80, 48, Range::Nat64),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, range)| *range)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---------- destination policy ----------

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(spec: &str) -> DestinationPolicy {
        DestinationPolicy::parse(spec).unwrap()
    }

    #[test]
    fn policy_parse_good_specs() {
        assert_eq!(policy(""), DestinationPolicy::default());
        assert_eq!(policy(" , ,"), DestinationPolicy::default());
        assert_eq!(policy("*"), DestinationPolicy::allow_all());
        assert_eq!(policy(" 10.0.0.0/8 , *"), {
            let mut p = DestinationPolicy::allow_all();
            p.nets.push(Cidr::new(ip("10.0.0.0"), 8));
            p
        });

        let p = policy(
            "10.0.0.0/8, 192.168.1.10 ,fd00::/8,::1,[fe80::1],[2001:db8::]/32, Hooks.Example.COM., localhost,my_host-1",
        );
        assert!(!p.allow_all);
        assert_eq!(p.hosts, ["hooks.example.com", "localhost", "my_host-1"]);
        assert_eq!(
            p.nets,
            [
                Cidr::new(ip("10.0.0.0"), 8),
                Cidr::host(ip("192.168.1.10")),
                Cidr::new(ip("fd00::"), 8),
                Cidr::host(ip("::1")),
                Cidr::host(ip("fe80::1")),
                Cidr::new(ip("2001:db8::"), 32),
            ]
        );
        // Host bits are dropped; /0 and the full lengths are valid.
        assert_eq!(policy("10.1.2.3/8"), policy("10.0.0.0/8"));
        assert_eq!(policy("fd12:3456::1/16"), policy("fd12::/16"));
        assert_eq!(policy("::ffff:10.0.0.1"), policy("10.0.0.1"));
        assert_eq!(policy("[::ffff:10.1.0.0]/112"), policy("10.1.0.0/16"));
        assert_eq!(policy("::ffff:0:0/96"), policy("0.0.0.0/0"));
        for spec in ["0.0.0.0/0", "::/0", "1.2.3.4/32", "::1/128", "10.0.0.0/ 8"] {
            assert!(DestinationPolicy::parse(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn policy_parse_bad_specs() {
        let cases = [
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/999", "0 to 32"),
            ("10.0.0.0/", "not a number"),
            ("10.0.0.0/x", "not a number"),
            ("10.0.0.0/-1", "not a number"),
            ("10.0.0/8", "not an IP address"),
            ("example.com/8", "not an IP address"),
            ("1.2.3", "not a valid IPv4 address"),
            ("256.1.1.1", "not a valid IPv4 address"),
            ("1.2.3.4.5", "not a valid IPv4 address"),
            (":::1", "not a valid IP address"),
            ("[::1", "not a valid IP address"),
            ("fe80::1%eth0", "not a valid IP address"),
            ("*.example.com", "wildcards"),
            ("**", "wildcards"),
            ("exa mple.com", "not a valid host name"),
            ("-bad.example", "not a valid host name"),
            ("bad-.example", "not a valid host name"),
            ("a..b", "not a valid host name"),
            (".", "not a valid host name"),
            ("http://x", "not an IP address"),
            ("é.example", "not a valid host name"),
        ];
        for (entry, why) in cases {
            // The bad entry is named even among good ones.
            let spec = format!("127.0.0.1, {entry} ,localhost");
            let err = DestinationPolicy::parse(&spec).expect_err(entry);
            assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
            assert!(err.contains(why), "{entry}: {err}");
        }
        let long = format!("{}.example", "a".repeat(64));
        assert!(DestinationPolicy::parse(&long).is_err());
        let huge = ["abc"; 70].join(".");
        let err = DestinationPolicy::parse(&huge).expect_err("too long");
        assert!(err.chars().count() < 200, "{err}");
    }

    #[test]
    fn empty_policy_refuses_every_private_like_range() {
        let p = DestinationPolicy::default();
        let refused = [
            ("10.0.0.0", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "metadata"),
            ("169.254.0.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("192.0.0.8", "IETF protocol"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::7f00:1", "IPv4-compatible"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fec0::1", "site-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2002:7f00:1::1", "6to4"),
            ("2002:808:808::1", "6to4"),
            ("64:ff95::a00:1", "NAT64"),
            ("64:ff95::808:808", "NAT64"),
            ("64:ff9b:1::1", "NAT64"),
            // IPv4 carried in IPv6: judged by the IPv4 address.
            (
                "::ffff:127.0.0.1",
                "IPv4-mapped form of 127.0.0.1, a loopback",
            ),
            ("::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"),
            ("::ffff:172.16.0.1", "private"),
            ("::ffff:192.168.1.1", "private"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:169.254.1.1", "link-local"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::ffff:100.64.0.1", "carrier-grade NAT"),
            ("::ffff:198.18.0.1", "benchmarking"),
            ("::ffff:224.0.0.1", "multicast"),
            ("::ffff:255.255.255.255", "broadcast"),
            ("::ffff:7f00:1", "loopback"),
            ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1, a private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
        ];
        for (addr, why) in refused {
            let a = ip(addr);
            assert!(!p.allows("example.com", a), "{addr} allowed");
            let err = p.check("example.com", [a]).expect_err(addr).0;
            assert!(err.contains(why), "{addr}: {err}");
            assert!(err.contains(ALLOWLIST_SETTING), "{err}");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.1",
            "203.0.112.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:db9::1",
            "2003::1",
            "fbff::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "::1:0:0:1",
        ];
        for addr in public {
            assert!(p.allows("example.com", ip(addr)), "{addr} refused");
            assert!(p.allows("", ip(addr)), "{addr} refused");
        }
    }

    #[test]
    fn allowlist_entries() {
        let p = policy("10.0.0.0/8, ::1, fd00::/8, 169.254.169.254, Hooks.Internal");
        assert!(p.allows("x", ip("10.1.2.3")));
        assert!(
            p.allows("x", ip("::ffff:10.1.2.3")),
            "IPv4 entry covers mapped form"
        );
        assert!(p.allows("x", ip("11.0.0.1")), "public");
        assert!(p.allows("x", ip("::1")));
        assert!(!p.allows("x", ip("127.0.0.1")));
        assert!(!p.allows("x", ip("::ffff:127.0.0.1")));
        assert!(p.allows("x", ip("fd12::1")));
        assert!(!p.allows("x", ip("fc00::1")));
        assert!(p.allows("x", ip("169.254.169.254")));
        assert!(!p.allows("x", ip("169.254.169.253")));
        assert!(!p.allows("x", ip("192.168.0.1")));
        // A v6 CIDR never matches a v4 address and vice versa.
        assert!(!policy("::/0").allows("x", ip("127.0.0.1")));
        assert!(!policy("0.0.0.0/0").allows("x", ip("::1")));
        assert!(policy("0.0.0.0/0").allows("x", ip("::ffff:127.0.0.1")));
        assert!(policy("::/0").allows("x", ip("::1")));

        // Host names: exact, case-insensitive, whatever they resolve to.
        for host in [
            "hooks.internal",
            "HOOKS.Internal",
            "hooks.internal.",
            " hooks.internal",
        ] {
            assert!(p.allows(host, ip("127.0.0.1")), "{host}");
            assert!(p.allows(host, ip("::1")), "{host}");
            assert_eq!(
                p.check(host, [ip("192.168.1.1"), ip("::")])
                    .map_err(|e| e.0),
                Ok(())
            );
        }
        for host in ["x.hooks.internal", "hooks.internal.example", "hooks", ""] {
            assert!(!p.allows(host, ip("127.0.0.1")), "{host}");
        }
        // An IP literal host is not a host name entry.
        let lit = policy("localhost");
        assert!(lit.allows("localhost", ip("127.0.0.1")));
        assert!(!lit.allows("127.0.0.1", ip("127.0.0.1")));
        assert!(!lit.allows("[::1]", ip("::1")));
        assert!(policy("::1").allows("[::1]", ip("::1")));

        let all = DestinationPolicy::allow_all();
        for addr in ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "8.8.8.8"] {
            assert!(all.allows("anything", ip(addr)));
        }
    }

    #[test]
    fn any_refused_address_refuses_the_host() {
        let p = DestinationPolicy::default();
        let err = p
            .check(
                "mixed.example",
                [ip("8.8.8.8"), ip("10.0.0.1"), ip("1.1.1.1")],
            )
            .expect_err("mixed")
            .0;
        assert_eq!(
            err,
            format!(
                "mixed.example resolves to 10.0.0.1, which is a private address; \
                 allow the host or the address with {ALLOWLIST_SETTING}"
            )
        );
        assert!(
            p.check("public.example", [ip("8.8.8.8"), ip("2606:4700::1")])
                .is_ok()
        );
        let err = p.check("[::1]", [ip("::1")]).expect_err("literal").0;
        assert_eq!(
            err,
            format!("::1 is a loopback address; allow it with {ALLOWLIST_SETTING}")
        );
    }

    #[test]
    fn check_destination_literal_ips() {
        let empty = DestinationPolicy::default();
        let refused = [
            ("http://127.0.0.1:9/x", "127.0.0.1 is a loopback address"),
            ("https://127.9.9.9/", "127.9.9.9 is a loopback address"),
            ("http://[::1]:8080/", "::1 is a loopback address"),
            ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
            ("http://169.254.169.254/latest/meta-data/", "metadata"),
            ("http://0.0.0.0:80/", "0.0.0.0 is an unspecified address"),
            ("http://[::]/", "unspecified"),
            ("http://100.64.1.1/", "carrier-grade NAT"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique local"),
            ("http://[::ffff:10.0.0.1]/", "IPv4-mapped form of 10.0.0.1"),
            ("http://[::ffff:a9fe:a9fe]/", "metadata"),
        ];
        for (url, want) in refused {
            let err = check_destination(url, &empty).expect_err(url);
            assert!(err.contains(want), "{url}: {err}");
            assert!(
                err.ends_with(&format!("allow it with {ALLOWLIST_SETTING}")),
                "{url}: {err}"
            );
        }
        for url in [
            "http://8.8.8.8/",
            "https://1.1.1.1:8443/hook?x=1",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert_eq!(check_destination(url, &empty), Ok(()), "{url}");
        }
        assert_eq!(
            check_destination("http://127.0.0.1/", &policy("127.0.0.1")),
            Ok(())
        );
        assert_eq!(
            check_destination("http://127.0.0.1/", &policy("127.0.0.0/8")),
            Ok(())
        );
        assert_eq!(
            check_destination("http://[::1]/", &policy("::1/128")),
            Ok(())
        );
        assert_eq!(check_destination("http://10.9.8.7/", &policy("*")), Ok(()));
        assert!(check_destination("http://127.0.0.1/", &policy("10.0.0.0/8")).is_err());

        // Never echoes userinfo or query.
        let err = check_destination("http://alice:s3cr3t@127.0.0.1:8/?token=t0k3n", &empty)
            .expect_err("loopback");
        for secret in ["alice", "s3cr3t", "t0k3n"] {
            assert!(!err.contains(secret), "{err}");
        }
        // Invalid URLs are reported as such.
        let err = check_destination("ftp://127.0.0.1/", &empty).expect_err("ftp");
        assert!(err.contains("http or https"), "{err}");
    }

    #[test]
    fn check_destination_localhost() {
        // /etc/hosts; no DNS server is involved.
        let empty = DestinationPolicy::default();
        let err = check_destination("http://localhost:8080/hook", &empty).expect_err("localhost");
        assert!(
            err.starts_with("localhost resolves to ") && err.contains("loopback"),
            "{err}"
        );
        let err = check_destination("http://bob:pw123@LocalHost/?k=secretq", &empty)
            .expect_err("localhost");
        assert!(!err.contains("pw123") && !err.contains("secretq"), "{err}");
        for spec in ["localhost", "LOCALHOST", "127.0.0.0/8, ::1", "*"] {
            assert_eq!(
                check_destination("http://localhost:8080/hook", &policy(spec)),
                Ok(()),
                "{spec}"
            );
        }
    }

    fn no_timeout() -> NextTimeout {
        NextTimeout::default()
    }

    #[test]
    fn resolver_returns_only_checked_addresses() {
        let config = ureq::config::Config::default();
        let uri: Uri = "http://127.0.0.1:8080/x".parse().unwrap();
        let allowing = PolicyResolver::new(Arc::new(policy("127.0.0.1")));
        let addrs = allowing.resolve(&uri, &config, no_timeout()).unwrap();
        let got: Vec<SocketAddr> = addrs.iter().copied().collect();
        assert_eq!(got, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        // kept for the next request to that host and port, so no lookup thread per request
        assert_eq!(allowing.cache.lock().unwrap().len(), 1);
        let again = allowing.resolve(&uri, &config, no_timeout()).unwrap();
        assert_eq!(again.iter().copied().collect::<Vec<_>>(), got);
        let other: Uri = "http://127.0.0.1:8081/x".parse().unwrap();
        let addrs = allowing.resolve(&other, &config, no_timeout()).unwrap();
        assert_eq!(addrs[0].port(), 8081);
        assert_eq!(allowing.cache.lock().unwrap().len(), 2);

        let refusing = PolicyResolver::new(Arc::new(DestinationPolicy::default()));
        for url in ["http://127.0.0.1:8080/x", "http://localhost:1/"] {
            let uri: Uri = url.parse().unwrap();
            let err = refusing
                .resolve(&uri, &config, no_timeout())
                .expect_err(url);
            let (class, msg) = describe_error(&err, "h:1", Duration::ZERO);
            assert_eq!(class, ErrorClass::Policy, "{msg}");
            assert!(msg.contains("loopback"), "{msg}");
        }
        // a refusal is not kept: nothing cached, the next request is checked again
        assert!(refusing.cache.lock().unwrap().is_empty());

        // The configured proxy's own address is trusted; nothing else is.
        let proxied = ureq::Agent::config_builder()
            .proxy(Some(ureq::Proxy::new("http://u:p@127.0.0.1:3128").unwrap()))
            .build();
        let proxy_uri = proxied.proxy().unwrap().uri().clone();
        let addrs = refusing
            .resolve(&proxy_uri, &proxied, no_timeout())
            .unwrap();
        assert_eq!(addrs.len(), 1);
        assert!(refusing.resolve(&uri, &proxied, no_timeout()).is_err());
        let other_port: Uri = "http://127.0.0.1:3129".parse().unwrap();
        assert!(
            refusing
                .resolve(&other_port, &proxied, no_timeout())
                .is_err()
        );
    }
}
