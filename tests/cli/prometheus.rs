//! A real Prometheus server scrapes two `pulse serve` shards of one targets
//! file, and the answers come from Prometheus's own query API: every target
//! has exactly one `probe_success` series, and the failing fixtures show 0.
//!
//! Prometheus is Debian's package (scripts/test.sh installs it); without it
//! the test is skipped with the reason printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pulse_fixtures::{Blackhole, HttpFixture, closed_port};

use super::hardening::{idle_keep_alive, slowloris};
use super::serve::{Serve, get, sample};
use super::util::*;

/// A Prometheus server on loopback with its own config and storage, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl Prometheus {
    /// Start Prometheus scraping `targets` every second; waits until ready.
    fn start(bin: &Path, targets: &[SocketAddr]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list = targets
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: pulse\n    static_configs:\n      - targets: [{list}]\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect(addr).is_ok() && get(addr, "/-/ready").0 == 200 {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "prometheus not ready: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: each result's labels and value.
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let (status, body) = get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        );
        assert_eq!(status, 200, "{promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of a query that returns one series, if it does.
    fn scalar(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [(_, v)] => Some(*v),
            _ => None,
        }
    }
}

/// Percent-encode a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn two_shards_scraped_by_prometheus(runtime: &str) {
    let Some(bin) = prometheus_binary() else {
        println!("skipped: prometheus not installed (scripts/test.sh installs it)");
        return;
    };
    let http = HttpFixture::start();
    let hole = Blackhole::start();
    // An https target whose certificate expires in three days, for the
    // expiry metric an alert would read.
    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let (https, tls) = HttpFixture::start_tls_valid(now - day, now + 3 * day);
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let expires = (now + 3 * day)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let mut up = vec![
        http.url("/ok"),
        format!("{} contains=pulse", http.url("/body/pulse-ok")),
        format!("tcp://{}", http.addr()),
        format!("{} ca={}", https.url("/ok"), ca.display()),
    ];
    // Enough targets that both shards get some (all 15 in one shard: 2^-14).
    up.extend((0..8).map(|i| http.url(&format!("/body/{i}"))));
    // A multi-packet ICMP probe (loopback answers every echo), when this
    // host may open an ICMP socket.
    const TRAIN: &str = "icmp://127.0.0.1 count=4 interval=50ms";
    let icmp = icmp_available();
    if icmp {
        up.push(TRAIN.into());
    }
    let down = vec![
        http.url("/status/503"),
        format!("tcp://{}", closed_port()),
        format!("tcp://{} timeout=500ms", hole.addr()),
        format!("{} contains=absent", http.url("/body/present")),
    ];
    let lines: Vec<String> = up.iter().chain(&down).cloned().collect();
    let file = targets_file(&lines);
    let path = file.path().to_str().unwrap();
    let args = |shard| {
        [
            "-t",
            path,
            "--interval",
            "1s",
            "--timeout",
            "1s",
            "--shard",
            shard,
        ]
    };
    let a = Serve::start(runtime, &args("0/2"));
    let b = Serve::start(runtime, &args("1/2"));
    let prom = Prometheus::start(&bin, &[a.addr, b.addr]);

    let target = |line: &str| line.split(' ').next().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let count = prom.scalar("count(probe_success)");
        let instances = prom.scalar("count(count by (instance) (probe_success))");
        if count == Some(lines.len() as f64) && instances == Some(2.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "count(probe_success) = {count:?}, instances = {instances:?} after 60 s\nprometheus: {}\nshard 0: {}\nshard 1: {}",
            prom.log(),
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(prom.scalar("count(up{job=\"pulse\"} == 1)"), Some(2.0));
    // Which targets are down, as Prometheus has them.
    let mut zero: Vec<String> = prom
        .query("probe_success == 0")
        .into_iter()
        .map(|(m, _)| m["target"].as_str().unwrap().to_owned())
        .collect();
    zero.sort();
    let mut want: Vec<String> = down.iter().map(|l| target(l)).collect();
    want.sort();
    assert_eq!(zero, want);
    assert_eq!(prom.scalar("sum(probe_success)"), Some(up.len() as f64));
    assert_eq!(
        prom.scalar(&format!(
            "probe_http_status_code{{target=\"{}\"}}",
            http.url("/status/503")
        )),
        Some(503.0)
    );
    // The certificate's expiry, as stored: three days from the fixture's
    // start (whole seconds), within the 3-day alert window.
    let stored = prom
        .scalar(&format!(
            "probe_ssl_earliest_cert_expiry{{target=\"{}\"}}",
            https.url("/ok")
        ))
        .expect("probe_ssl_earliest_cert_expiry is stored");
    assert!((stored - expires).abs() <= 2.0, "{stored} vs {expires}");
    assert_eq!(
        prom.scalar("count(probe_ssl_earliest_cert_expiry - time() < 3 * 86400 + 60)"),
        Some(1.0)
    );
    assert_eq!(
        prom.scalar("count(probe_tls_version_info{version=\"TLS 1.3\"})"),
        Some(1.0)
    );
    // The self-metrics arrive too, one build_info per shard with the model.
    assert_eq!(
        prom.scalar(&format!("count(pulse_build_info{{runtime=\"{runtime}\"}})")),
        Some(2.0)
    );
    // The echo train's loss and round trips, stored by Prometheus.
    if icmp {
        let t = target(TRAIN);
        let value = |metric: &str| prom.scalar(&format!("{metric}{{target=\"{t}\"}}"));
        assert_eq!(value("probe_icmp_packet_loss_ratio"), Some(0.0));
        assert_eq!(value("probe_icmp_packets_sent"), Some(4.0));
        assert_eq!(value("probe_icmp_packets_received"), Some(4.0));
        assert_eq!(value("probe_icmp_rtt_seconds_count"), Some(4.0));
        let max = prom.scalar(&format!(
            "probe_icmp_rtt_stat_seconds{{target=\"{t}\",stat=\"max\"}}"
        ));
        assert!(max.is_some_and(|v| v > 0.0), "max rtt {max:?}");
    }
    // promtool on what the shards serve (the train is in one of them).
    promtool_check(&a.metrics());
    promtool_check(&b.metrics());
    assert!(sample(&b.metrics(), "pulse_rounds_total").unwrap() >= 1.0);
}

#[test]
fn prometheus_scrapes_two_shards_tokio() {
    two_shards_scraped_by_prometheus("tokio");
}

#[test]
fn prometheus_scrapes_two_shards_smol() {
    two_shards_scraped_by_prometheus("smol");
}

#[test]
fn prometheus_scrapes_two_shards_async_std() {
    two_shards_scraped_by_prometheus("async-std");
}

#[test]
fn prometheus_scrapes_two_shards_threads() {
    two_shards_scraped_by_prometheus("threads");
}

#[test]
fn prometheus_scrapes_two_shards_rayon() {
    two_shards_scraped_by_prometheus("rayon");
}

/// A real Prometheus keeps scraping while idle keep-alive and slowloris
/// clients hold the exporter's connection cap and keep opening new ones,
/// fast enough that Prometheus's own kept-alive connection is evicted
/// between scrapes: every scrape must still succeed (`up` stays 1), because
/// eviction only ever closes a connection that waits for a request, and
/// Prometheus retries a GET on a fresh connection.
#[test]
fn prometheus_scrapes_through_idle_and_slow_clients() {
    let Some(bin) = prometheus_binary() else {
        println!("skipped: prometheus not installed (scripts/test.sh installs it)");
        return;
    };
    let http = HttpFixture::start();
    let file = targets_file(&[http.url("/ok")]);
    let serve = Serve::start(
        "tokio",
        &["-t", file.path().to_str().unwrap(), "--interval", "1s"],
    );
    let addr = serve.addr;
    let mut held: Vec<std::net::TcpStream> = (0..128)
        .map(|i| {
            if i % 2 == 0 {
                idle_keep_alive(addr)
            } else {
                slowloris(addr)
            }
        })
        .collect();
    let prom = Prometheus::start(&bin, &[addr]);
    // Prometheus's first scrape comes a few seconds after it is ready (its
    // target discovery and a per-target offset): count from there.
    let start = Instant::now();
    while prom.scalar("up{job=\"pulse\"}").is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", prom.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // About 70 new slow clients a second: more than the cap, so every
    // waiting connection (Prometheus's kept-alive one too) is evicted
    // within a second.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        held.push(slowloris(addr));
        if held.len() > 256 {
            held.drain(..64);
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    let scrapes = prom.scalar("count_over_time(up{job=\"pulse\"}[7s])");
    let lowest = prom.scalar("min_over_time(up{job=\"pulse\"}[7s])");
    let evicted = prom.scalar("increase(pulse_http_connections_evicted_total[7s])");
    assert!(
        scrapes.is_some_and(|n| n >= 5.0),
        "scrapes in the last 7 s: {scrapes:?}\n{}",
        prom.log()
    );
    assert_eq!(
        lowest,
        Some(1.0),
        "a scrape failed:\n{}\n{}",
        prom.log(),
        serve.log()
    );
    assert!(
        evicted.is_some_and(|n| n > 100.0),
        "the cap was held and connections evicted: {evicted:?}"
    );
    println!(
        "{scrapes:?} scrapes in 7 s, all up, while {evicted:?} waiting connections were evicted"
    );
    drop(held);
}
