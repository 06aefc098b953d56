//! Configuration of one cluster node, validated at construction so that the
//! runtime never sees a bad name, a short cookie or an empty address.

use std::fmt;
use std::net::SocketAddr;

use crate::listener::tls::TlsFiles;
use crate::listener::ListenerConfig;
use crate::membership::DetectorConfig;

/// A name no node may take: it marks seeded data.
pub const RESERVED_NAME: &str = "seed";

/// Shortest cookie accepted, in bytes.
pub const MIN_COOKIE_BYTES: usize = 16;

/// The shared secret that admits a node to the cluster.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(String);

impl Cookie {
    /// Validates a cookie: at least [`MIN_COOKIE_BYTES`] bytes, no
    /// surrounding whitespace (a trailing newline from a file is trimmed).
    pub fn new(secret: &str) -> Result<Self, ConfigError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(ConfigError::EmptyCookie);
        }
        if secret.len() < MIN_COOKIE_BYTES {
            return Err(ConfigError::ShortCookie { len: secret.len() });
        }
        Ok(Self(secret.to_string()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie(<{} bytes>)", self.0.len())
    }
}

/// Why a node configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// No cookie was given.
    #[error("the cluster cookie is empty")]
    EmptyCookie,
    /// The cookie is too short to be a secret.
    #[error("the cluster cookie has {len} bytes, at least {MIN_COOKIE_BYTES} are required")]
    ShortCookie {
        /// Its length in bytes.
        len: usize,
    },
    /// The node name is not usable.
    #[error("invalid node name {0:?}: use 1 to 64 letters, digits, '-' or '_', and not \"seed\"")]
    BadName(String),
    /// The advertised address is not `host:port`.
    #[error("invalid advertise address {0:?}: expected HOST:PORT")]
    BadAdvertise(String),
    /// The expected cluster size is zero.
    #[error("the expected cluster size must be at least 1")]
    ZeroExpected,
}

/// Everything a cluster node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node name, unique in the cluster.
    pub name: String,
    /// Address the cluster listener binds to.
    pub listen: SocketAddr,
    /// `host:port` peers dial to reach this node.
    pub advertise: String,
    /// Address of this node's HTTP gateway, told to peers.
    pub http_addr: String,
    /// Addresses to dial at start and redial while they are away.
    pub seeds: Vec<String>,
    /// The shared secret.
    pub cookie: Cookie,
    /// Expected cluster size, the basis of the quorum.
    pub expected: usize,
    /// Failure detector timing.
    pub detector: DetectorConfig,
    /// Limits of the cluster listener (handshakes in flight, deadline).
    pub listener: ListenerConfig,
    /// Mutual TLS between nodes; `None` for plain TCP with the cookie only.
    pub tls: Option<TlsFiles>,
}

/// Whether `name` may name a node: 1 to 64 letters, digits, `-` or `_`,
/// and not [`RESERVED_NAME`] ("seed" marks data generated identically on
/// every node; a node of that name would pass its own writes off as seed
/// data).
pub fn is_valid_name(name: &str) -> bool {
    name != RESERVED_NAME
        && !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl NodeConfig {
    /// A validated configuration; `advertise` defaults to `listen`.
    pub fn new(
        name: &str,
        listen: SocketAddr,
        advertise: Option<String>,
        http_addr: String,
        seeds: Vec<String>,
        cookie: Cookie,
        expected: usize,
    ) -> Result<Self, ConfigError> {
        if !is_valid_name(name) {
            return Err(ConfigError::BadName(name.to_string()));
        }
        if expected == 0 {
            return Err(ConfigError::ZeroExpected);
        }
        let advertise = advertise.unwrap_or_else(|| listen.to_string());
        if split_host_port(&advertise).is_none() {
            return Err(ConfigError::BadAdvertise(advertise));
        }
        Ok(Self {
            name: name.to_string(),
            listen,
            advertise,
            http_addr,
            seeds,
            cookie,
            expected,
            detector: DetectorConfig::default(),
            listener: ListenerConfig::default(),
            tls: None,
        })
    }

    /// The same configuration with mutual TLS between nodes.
    pub fn with_tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// The advertised host and port.
    pub fn advertise_host_port(&self) -> (&str, u16) {
        split_host_port(&self.advertise).expect("advertise address validated in NodeConfig::new")
    }
}

/// Splits `host:port` (IPv6 hosts in brackets) into its parts.
fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_must_be_long_enough() {
        assert_eq!(Cookie::new(""), Err(ConfigError::EmptyCookie));
        assert_eq!(
            Cookie::new("short\n"),
            Err(ConfigError::ShortCookie { len: 5 })
        );
        let cookie = Cookie::new("0123456789abcdef\n").unwrap();
        assert_eq!(cookie.expose(), "0123456789abcdef");
        assert!(!format!("{cookie:?}").contains("0123"));
    }

    #[test]
    fn names_and_addresses_are_checked() {
        let cookie = Cookie::new("0123456789abcdef").unwrap();
        let listen: SocketAddr = "127.0.0.1:7071".parse().unwrap();
        let make = |name: &str, advertise: Option<&str>| {
            NodeConfig::new(
                name,
                listen,
                advertise.map(str::to_string),
                "127.0.0.1:8081".into(),
                vec![],
                cookie.clone(),
                3,
            )
        };
        assert!(make("n1", None).is_ok());
        assert_eq!(make("n1", None).unwrap().advertise, "127.0.0.1:7071");
        assert!(matches!(make("n@1", None), Err(ConfigError::BadName(_))));
        assert!(matches!(make("", None), Err(ConfigError::BadName(_))));
        assert!(matches!(make("seed", None), Err(ConfigError::BadName(_))));
        assert!(matches!(
            make("n1", Some("nohost")),
            Err(ConfigError::BadAdvertise(_))
        ));
        let config = make("n1", Some("shop.example:9000")).unwrap();
        assert_eq!(config.advertise_host_port(), ("shop.example", 9000));
    }
}
