//! What a load run is: the flags of `bazaar load`, checked and turned
//! into [`Settings`], and the weighted mix of user flows.
//!
//! Pure: no I/O, so the parsing, the mix and the choice of source
//! addresses are unit-tested.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use bazaar_actors::auth::model::DEMO_USERS;

use crate::config;

/// Default arrival rate, flows per second.
pub const DEFAULT_RATE: f64 = 200.0;
/// Default length of a run, in seconds.
pub const DEFAULT_DURATION_SECS: f64 = 10.0;
/// Default budget of one request, in seconds: above the gateway's 5 s
/// read deadline, so a slow read shows as the gateway's 503 rather than
/// as a client timeout.
pub const DEFAULT_TIMEOUT_SECS: f64 = 6.0;
/// Default cap on requests outstanding at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2_000;
/// Requests per second one source address sends to one gateway at most
/// when `--sources` is not given: half the gateway's per-address limit
/// (1,000/s, `gateway::limits::RATE_PER_SEC`).
pub const RATE_PER_SOURCE: f64 = 500.0;
/// Most loopback source addresses used (127.0.0.2 to 127.0.1.1).
pub const MAX_SOURCES: usize = 256;
/// Longest run accepted, in seconds (a day).
const MAX_DURATION_SECS: f64 = 86_400.0;
/// Highest rate accepted, flows per second.
const MAX_RATE: f64 = 1_000_000.0;
/// Most shoppers of a closed loop: one per demo user, so no two share a cart.
const MAX_SHOPPERS: usize = DEMO_USERS;

/// Flags of `bazaar load`.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Gateways to load, comma-separated or repeated; requests go round-robin
    /// over them [default: the gateways of a default `bazaar up`,
    /// http://127.0.0.1:8081 to :8083].
    #[arg(long, value_delimiter = ',')]
    pub at: Vec<String>,
    /// Flows started per second (one request each, plus a login when a user
    /// has no token), held on a fixed timetable whatever the latency.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = DEFAULT_DURATION_SECS)]
    pub duration: f64,
    /// Seconds one request may take before it counts as a timeout.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: f64,
    /// Requests outstanding at most; an arrival beyond that is not sent and
    /// counts as an error ("not started").
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Loopback source addresses (127.0.0.2, 127.0.0.3, ...) to spread the
    /// virtual users over, so the gateways' per-address rate limit does not
    /// throttle the load [default: one per 500 req/s per gateway; none
    /// unless every gateway is an IPv4 loopback address].
    #[arg(long)]
    pub sources: Option<usize>,
    /// Exit non-zero (after the report) when more than this share of the
    /// requests failed, not-started arrivals included: a fraction (`0.01`)
    /// or a percentage (`1%`); 0 fails on any error [default: never].
    #[arg(long, value_parser = parse_error_rate)]
    pub max_error_rate: Option<f64>,
    /// Which flows arrive: `shop` (browse 10, search 5, view cart 3, add to
    /// cart 2, checkout 1) or `checkout` (every flow puts one unit in the
    /// user's cart and buys it: orders only).
    #[arg(long, value_enum, default_value_t = Mix::Shop)]
    pub mix: Mix,
    /// Closed loop: this many shoppers each run one flow after another,
    /// each waiting for its answers, for `--duration` (`--rate` is then
    /// ignored). Measures the most a cluster confirms; an open loop
    /// (`--rate`) measures latency at a given load.
    #[arg(long)]
    pub shoppers: Option<usize>,
    /// Print the report as JSON on stdout (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Which flows a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// The weighted mix of every flow.
    Shop,
    /// Orders only: add one unit, then check out.
    Checkout,
}

impl Mix {
    /// The flow a draw in `0..total_weight()` picks.
    pub fn pick(self, draw: u32) -> Flow {
        match self {
            Mix::Shop => Flow::pick(draw),
            Mix::Checkout => Flow::Checkout,
        }
    }

    /// Whether `flow` is part of this mix, and its weight in it.
    pub fn weight(self, flow: Flow) -> u32 {
        match self {
            Mix::Shop => flow.weight(),
            Mix::Checkout => u32::from(flow == Flow::Checkout),
        }
    }
}

/// A checked load run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Gateway base URLs without a trailing slash.
    pub gateways: Vec<String>,
    /// Flows started per second.
    pub rate: f64,
    /// Length of the run.
    pub duration: Duration,
    /// Budget of one request.
    pub timeout: Duration,
    /// Requests outstanding at most.
    pub max_in_flight: usize,
    /// Source addresses to bind, one HTTP client each; empty: the system picks.
    pub sources: Vec<IpAddr>,
    /// Share of failed requests (0 to 1) above which the run fails.
    pub max_error_rate: Option<f64>,
    /// Which flows arrive.
    pub mix: Mix,
    /// Closed loop with this many shoppers; `None`: open loop at `rate`.
    pub shoppers: Option<usize>,
    /// JSON on stdout.
    pub json: bool,
}

impl Settings {
    /// Checks the flags.
    pub fn from_args(args: &LoadArgs) -> anyhow::Result<Self> {
        let gateways = if args.at.is_empty() {
            default_gateways()
        } else {
            args.at
                .iter()
                .map(|url| gateway_url(url))
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        if !(args.rate > 0.0 && args.rate <= MAX_RATE) {
            bail!("--rate must be above 0 and at most {MAX_RATE}");
        }
        if !(args.duration > 0.0 && args.duration <= MAX_DURATION_SECS) {
            bail!("--duration must be above 0 and at most {MAX_DURATION_SECS} seconds");
        }
        if !(args.timeout > 0.0 && args.timeout <= 600.0) {
            bail!("--timeout must be above 0 and at most 600 seconds");
        }
        if args.max_in_flight == 0 {
            bail!("--max-in-flight must be at least 1");
        }
        if args.shoppers == Some(0) || args.shoppers > Some(MAX_SHOPPERS) {
            bail!("--shoppers must be between 1 and {MAX_SHOPPERS}");
        }
        // A closed loop of N shoppers sends at most about N / 1 ms requests a
        // second; the sources are sized for that rate.
        let source_rate = match args.shoppers {
            Some(shoppers) => shoppers as f64 * 1_000.0,
            None => args.rate,
        };
        let sources = source_addresses(&gateways, source_rate, args.sources)?;
        Ok(Self {
            gateways,
            rate: args.rate,
            duration: Duration::from_secs_f64(args.duration),
            timeout: Duration::from_secs_f64(args.timeout),
            max_in_flight: args.max_in_flight,
            sources,
            max_error_rate: args.max_error_rate,
            mix: args.mix,
            shoppers: args.shoppers,
            json: args.json,
        })
    }

    /// Arrivals in the whole run (of an open loop).
    pub fn arrivals(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round().max(1.0) as u64
    }
}

/// Parses `--max-error-rate`: `0.05` or `5%`, between 0 and 1 (100%).
pub fn parse_error_rate(value: &str) -> Result<f64, String> {
    let (number, scale) = match value.trim().strip_suffix('%') {
        Some(percent) => (percent.trim(), 100.0),
        None => (value.trim(), 1.0),
    };
    let rate = number
        .parse::<f64>()
        .map_err(|_| format!("{value:?} is not a fraction (0.05) or a percentage (5%)"))?
        / scale;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{value:?} is not between 0 and 1 (100%)"));
    }
    Ok(rate)
}

/// The gateways of a default `bazaar up`.
pub fn default_gateways() -> Vec<String> {
    (0..config::DEFAULT_NODES)
        .map(|i| {
            format!(
                "http://127.0.0.1:{}",
                config::DEFAULT_HTTP_PORT as usize + i
            )
        })
        .collect()
}

/// `url` checked as an `http://HOST:PORT` base URL, trailing slash removed.
fn gateway_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad gateway url {url:?}"))?;
    if parsed.scheme() != "http" {
        bail!("gateway url {url:?} must start with http:// (the gateway speaks plain HTTP)");
    }
    if parsed.host().is_none() || parsed.path() != "/" || parsed.query().is_some() {
        bail!("gateway url {url:?} must be http://HOST[:PORT] with no path");
    }
    Ok(url.to_string())
}

/// The source addresses: `wanted` of them (or enough that each sends at
/// most [`RATE_PER_SOURCE`] to one gateway), from 127.0.0.2 up, when every
/// gateway is an IPv4 loopback address; none otherwise (a loopback source
/// cannot reach another host).
fn source_addresses(
    gateways: &[String],
    rate: f64,
    wanted: Option<usize>,
) -> anyhow::Result<Vec<IpAddr>> {
    let all_loopback = gateways.iter().all(|url| {
        reqwest::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str()?.parse::<Ipv4Addr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    });
    let count = match wanted {
        Some(0) => return Ok(Vec::new()),
        Some(count) if !all_loopback => {
            bail!("--sources {count} needs every gateway at an IPv4 loopback address (127.x.y.z)")
        }
        Some(count) if count > MAX_SOURCES => bail!("--sources must be at most {MAX_SOURCES}"),
        Some(count) => count,
        None if !all_loopback => return Ok(Vec::new()),
        None => {
            let per_gateway = rate / gateways.len() as f64;
            ((per_gateway / RATE_PER_SOURCE).ceil() as usize).clamp(1, MAX_SOURCES)
        }
    };
    Ok((0..count)
        .map(|i| {
            IpAddr::V4(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(127, 0, 0, 2)) + i as u32,
            ))
        })
        .collect())
}

/// A user flow of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flow {
    /// View one product.
    Browse,
    /// Search for a word of a product name.
    Search,
    /// Read one's cart.
    ViewCart,
    /// Put one unit of a product in one's cart.
    AddToCart,
    /// Buy what is in one's cart (adding a unit first if it is empty).
    Checkout,
}

impl Flow {
    /// Every flow, in report order.
    pub const ALL: [Flow; 5] = [
        Flow::Browse,
        Flow::Search,
        Flow::ViewCart,
        Flow::AddToCart,
        Flow::Checkout,
    ];

    /// Relative frequency in the mix.
    pub fn weight(self) -> u32 {
        match self {
            Flow::Browse => 10,
            Flow::Search => 5,
            Flow::ViewCart => 3,
            Flow::AddToCart => 2,
            Flow::Checkout => 1,
        }
    }

    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Browse => "browse",
            Flow::Search => "search",
            Flow::ViewCart => "view cart",
            Flow::AddToCart => "add to cart",
            Flow::Checkout => "checkout",
        }
    }

    /// Position in [`Flow::ALL`].
    pub fn index(self) -> usize {
        Flow::ALL.iter().position(|&f| f == self).unwrap_or(0)
    }

    /// The flow a draw in `0..total_weight()` picks.
    pub fn pick(draw: u32) -> Flow {
        let mut left = draw % Self::total_weight();
        for flow in Flow::ALL {
            if left < flow.weight() {
                return flow;
            }
            left -= flow.weight();
        }
        Flow::Browse
    }

    /// Sum of the weights.
    pub fn total_weight() -> u32 {
        Flow::ALL.iter().map(|f| f.weight()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(at: &[&str]) -> LoadArgs {
        LoadArgs {
            at: at.iter().map(|s| s.to_string()).collect(),
            rate: 3000.0,
            duration: 2.0,
            timeout: 1.0,
            max_in_flight: 10,
            sources: None,
            max_error_rate: None,
            mix: Mix::Shop,
            shoppers: None,
            json: false,
        }
    }

    #[test]
    fn error_rates_are_fractions_or_percentages() {
        assert_eq!(parse_error_rate("0.05"), Ok(0.05));
        assert_eq!(parse_error_rate("5%"), Ok(0.05));
        assert_eq!(parse_error_rate(" 0 % "), Ok(0.0));
        assert_eq!(parse_error_rate("100%"), Ok(1.0));
        assert!(parse_error_rate("5").is_err(), "5 is 500%, not 5%");
        assert!(parse_error_rate("-1%").is_err());
        assert!(parse_error_rate("NaN").is_err());
        assert!(parse_error_rate("some").is_err());
    }

    #[test]
    fn the_mix_follows_the_weights() {
        let mut counts = [0u32; 5];
        for draw in 0..Flow::total_weight() * 10 {
            counts[Flow::pick(draw).index()] += 1;
        }
        assert_eq!(counts, [100, 50, 30, 20, 10]);
    }

    #[test]
    fn default_gateways_are_those_of_a_default_up() {
        let settings = Settings::from_args(&args(&[])).unwrap();
        assert_eq!(
            settings.gateways,
            [
                "http://127.0.0.1:8081",
                "http://127.0.0.1:8082",
                "http://127.0.0.1:8083"
            ]
        );
        assert_eq!(settings.arrivals(), 6000);
    }

    #[test]
    fn loopback_gateways_get_enough_source_addresses() {
        let settings = Settings::from_args(&args(&["http://127.0.0.1:1/"])).unwrap();
        assert_eq!(settings.gateways, ["http://127.0.0.1:1"]);
        assert_eq!(settings.sources.len(), 6);
        assert_eq!(settings.sources[0].to_string(), "127.0.0.2");
        assert_eq!(settings.sources[5].to_string(), "127.0.0.7");
    }

    #[test]
    fn other_hosts_get_no_source_address() {
        let settings = Settings::from_args(&args(&["http://shop.example:80"])).unwrap();
        assert!(settings.sources.is_empty());
        let mut wanted = args(&["http://shop.example:80"]);
        wanted.sources = Some(4);
        assert!(Settings::from_args(&wanted).is_err());
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Settings::from_args(&args(&["https://127.0.0.1:1"])).is_err());
        assert!(Settings::from_args(&args(&["http://127.0.0.1:1/api"])).is_err());
        assert!(Settings::from_args(&args(&["not a url"])).is_err());
        let mut zero = args(&[]);
        zero.rate = 0.0;
        assert!(Settings::from_args(&zero).is_err());
        let mut nan = args(&[]);
        nan.duration = f64::NAN;
        assert!(Settings::from_args(&nan).is_err());
    }
}
