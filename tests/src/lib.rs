//! Behaviour tests for flext-obs live in `tests/`; this library only holds shared helpers.

pub mod example;
pub mod faults;

/// Starts a peer process that prints `listening <addr>` first (as `src/bin/otlp_peer` does),
/// and returns it with that address.
///
/// # Panics
/// When the process does not start or its first line is not `listening <addr>`.
pub fn spawn_listening(mut command: std::process::Command) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead as _;
    let mut child = command.stdout(std::process::Stdio::piped()).spawn().expect("the peer starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut line).expect("its first line");
    let addr =
        line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("not an address line: {line:?}")).parse().expect("an address");
    (child, addr)
}
pub mod grpc_receiver;
pub mod otlp_receiver;
pub mod tls_peer;

use flext_obs::store::SeriesValue;
use flext_obs::{Config, Observability};

/// A fresh, isolated instance for one test.
///
/// # Panics
/// When the default configuration is refused, which would be a bug in itself.
pub fn fresh() -> Observability {
    Observability::new(Config::builder().service_name("tests").build().expect("valid config")).expect("valid store")
}

/// Sum of every series of metric `name` in the global store whose labels include all of `labels`.
pub fn sum(name: &str, labels: &[(&str, &str)]) -> f64 {
    flext_obs::global()
        .snapshot()
        .series
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v)))
        .map(|s| match &s.value {
            SeriesValue::Histogram(h) => {
                #[allow(clippy::cast_precision_loss)]
                let count = h.count as f64;
                count
            }
            other => other.scalar().unwrap_or(0.0),
        })
        .sum()
}

/// Calls of `function` with `result` (`ok` or `error`), over every caller.
pub fn calls(function: &str, result: &str) -> f64 {
    sum("function_calls_total", &[("function", function), ("result", result)])
}

/// Panicked calls of `function` (`flext_function_panics_total`; also counted as `result="error"`).
pub fn panics(function: &str) -> f64 {
    sum("flext_function_panics_total", &[("function", function)])
}

/// Async calls of `function` dropped before they finished (`flext_function_cancellations_total`;
/// also counted as `result="ok"`).
pub fn cancellations(function: &str) -> f64 {
    sum("flext_function_cancellations_total", &[("function", function)])
}

/// Observations in `function`'s duration histogram.
pub fn timed(function: &str) -> f64 {
    sum("function_calls_duration_seconds", &[("function", function)])
}

/// `function`'s in-flight gauge.
pub fn in_flight(function: &str) -> f64 {
    sum("function_calls_concurrent", &[("function", function)])
}

/// The recent alerts raised by `function`.
pub fn alerts_of(function: &str) -> Vec<flext_obs::Alert> {
    flext_obs::alert::recent().into_iter().filter(|a| a.source_function() == Some(function)).collect()
}

/// The recent spans of `function`.
pub fn spans_of(function: &str) -> Vec<flext_obs::Span> {
    flext_obs::trace::recent_spans().into_iter().filter(|s| s.name() == function).collect()
}

/// One sample line of a Prometheus exposition, parsed back (labels unescaped).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as exposed (`_total`, `_bucket`, ... included).
    pub name: String,
    /// Labels, unescaped.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The value as written.
    pub value: String,
    /// The exemplar part after ` # `, if any.
    pub exemplar: Option<String>,
}

/// Parses the sample lines of an exposition (comments skipped), unescaping label values: a
/// strict reader for what promtool does not check (duplicates, `+Inf`, escapes round-trip).
///
/// # Panics
/// On a line that is not a well-formed sample.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = line[..name_end].to_owned();
        let mut labels = std::collections::BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut key = String::new();
            let end;
            loop {
                let (i, c) = chars.next().unwrap_or_else(|| panic!("unterminated labels in {line:?}"));
                match c {
                    '}' => {
                        end = i;
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "label value must be quoted in {line:?}");
                        let mut value = String::new();
                        loop {
                            match chars.next().unwrap_or_else(|| panic!("unterminated value in {line:?}")).1 {
                                '\\' => match chars.next().unwrap().1 {
                                    'n' => value.push('\n'),
                                    '\\' => value.push('\\'),
                                    '"' => value.push('"'),
                                    other => panic!("bad escape \\{other} in {line:?}"),
                                },
                                '"' => break,
                                c => value.push(c),
                            }
                        }
                        assert!(labels.insert(std::mem::take(&mut key), value).is_none(), "duplicate label in {line:?}");
                    }
                    c => key.push(c),
                }
            }
            rest = &body[end + 1..];
        }
        let rest = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no space before the value in {line:?}"));
        let (value, exemplar) = match rest.split_once(" # ") {
            Some((v, e)) => (v.to_owned(), Some(e.to_owned())),
            None => (rest.to_owned(), None),
        };
        out.push(Sample { name, labels, value, exemplar });
    }
    out
}

/// Runs `promtool check metrics` on `text`; returns its exit code and standard error.
///
/// # Panics
/// When promtool is not installed (scripts/test.sh installs it).
pub fn promtool_check(text: &str) -> (i32, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: run `bash scripts/test.sh`, which installs the Debian package prometheus");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout))
}

/// A minimal HTTP/1.1 client over a plain `TcpStream` (one request per connection), so the
/// tests see exactly what goes over the wire.
pub mod http {
    use std::collections::HashMap;
    use std::fmt::Write as _;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// A response: status, lower-cased headers, body.
    #[derive(Debug)]
    pub struct Response {
        /// Status code.
        pub status: u16,
        /// Headers, names lower-cased.
        pub headers: HashMap<String, String>,
        /// Body (chunked bodies decoded).
        pub body: String,
    }

    /// Sends `method path` with `headers` and `body`, reads the whole response.
    ///
    /// # Errors
    /// On a connection or read failure.
    pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<Response> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            let _ = write!(text, "{k}: {v}\r\n");
        }
        text.push_str("\r\n");
        text.push_str(body);
        stream.write_all(text.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("no header end in {raw:?}")))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let headers: HashMap<String, String> =
            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
        let body = if headers.get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok(Response { status, headers, body })
    }

    /// `GET path`.
    ///
    /// # Errors
    /// On a connection or read failure.
    pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        request(addr, "GET", path, headers, "")
    }

    fn dechunk(mut body: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
            if size == 0 || rest.len() < size {
                break;
            }
            out.push_str(&rest[..size]);
            body = rest[size..].trim_start_matches("\r\n");
        }
        out
    }
}

/// The real servers from the Debian packages (`prometheus`, `prometheus-pushgateway`,
/// `prometheus-alertmanager`) on 127.0.0.1. `scripts/test.sh` (which `.ci/run` calls) starts one
/// of each and names them in `FLEXT_TEST_PROMETHEUS_URL` (with `FLEXT_TEST_PROMETHEUS_SD_DIR`,
/// the directory its file-based service discovery reads), `FLEXT_TEST_PUSHGATEWAY_URL` and
/// `FLEXT_TEST_ALERTMANAGER_URL`; the tests use those. When a variable is unset (a plain
/// `cargo test`), the test starts the server itself, on a port chosen here with a temporary
/// directory, and stops it when done.
pub mod servers {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A running server: started by this test (stopped when dropped) or by `scripts/test.sh`.
    #[derive(Debug)]
    pub struct Server {
        child: Option<Child>,
        /// Its temporary directory (config, data, log), when started here.
        pub dir: Option<PathBuf>,
        /// Where it listens.
        pub addr: SocketAddr,
    }

    impl Server {
        /// `http://127.0.0.1:PORT`.
        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        /// What the server wrote to its log so far (for failure messages).
        pub fn log(&self) -> String {
            match &self.dir {
                Some(dir) => std::fs::read_to_string(dir.join("server.log")).unwrap_or_default(),
                None => "(started by scripts/test.sh: its log is in the directory that script printed)".to_owned(),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(child) = &mut self.child {
                let _ = child.kill();
                let _ = child.wait();
            }
            if let Some(dir) = &self.dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// A free port on 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
    }

    /// A new, empty temporary directory.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flext-obs-{tag}-{}-{}", std::process::id(), uuid_like()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        dir
    }

    fn uuid_like() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    }

    fn wait_ready(server: &Server, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if crate::http::get(server.addr, "/-/ready", &[]).is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} not ready within 30 s:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server `scripts/test.sh` started, if it named one in `var`.
    fn external(var: &str) -> Option<Server> {
        let url = std::env::var(var).ok().filter(|v| !v.is_empty())?;
        let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap_or_else(|e| panic!("{var}={url}: {e}"));
        let server = Server { child: None, dir: None, addr };
        wait_ready(&server, var);
        Some(server)
    }

    fn start(binary: &str, dir: PathBuf, addr: SocketAddr, args: &[String]) -> Server {
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): run `bash scripts/test.sh`, which installs the Debian packages"));
        let server = Server { child: Some(child), dir: Some(dir), addr };
        wait_ready(&server, binary);
        server
    }

    /// Prometheus scraping every second the targets listed in `*.json` files of the returned
    /// directory (write a file there, under a name of your own, to add a target).
    ///
    /// # Panics
    /// When the package is missing or the server does not get ready.
    pub fn prometheus() -> (Server, PathBuf) {
        if let (Some(server), Ok(sd)) = (external("FLEXT_TEST_PROMETHEUS_URL"), std::env::var("FLEXT_TEST_PROMETHEUS_SD_DIR")) {
            return (server, PathBuf::from(sd));
        }
        let sd = temp_dir("file-sd");
        (prometheus_on(&sd), sd)
    }

    fn prometheus_on(sd_dir: &Path) -> Server {
        let dir = temp_dir("prometheus");
        let port = free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: flext\n    scrape_interval: 1s\n    file_sd_configs:\n      - files: ['{}/*.json']\n        refresh_interval: 1s\n",
            sd_dir.display()
        );
        start_prometheus(dir, port, &config, &["--web.enable-lifecycle", "--enable-feature=exemplar-storage"])
    }

    /// A Prometheus of this test's own, scraping `targets` every second and evaluating
    /// `rule_files` every second (the shared one of `scripts/test.sh` has no rules).
    ///
    /// # Panics
    /// When the package is missing or the server does not get ready.
    pub fn prometheus_with_rules(targets: &[SocketAddr], rule_files: &[PathBuf]) -> Server {
        let dir = temp_dir("prometheus-rules");
        let port = free_port();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: Vec<String> = rule_files.iter().map(|r| format!("'{}'", r.display())).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{}]\nscrape_configs:\n  - job_name: flext\n    scrape_interval: 1s\n    static_configs:\n      - targets: [{}]\n",
            rules.join(", "),
            targets.join(", ")
        );
        start_prometheus(dir, port, &config, &["--rules.alert.resend-delay=1s"])
    }

    /// Starts Prometheus on 127.0.0.1:`port` with `config` written in `dir`, its data there too.
    fn start_prometheus(dir: PathBuf, port: u16, config: &str, extra: &[&str]) -> Server {
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let mut args = vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.external-url=http://127.0.0.1:{port}/"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        start("prometheus", dir, SocketAddr::from(([127, 0, 0, 1], port)), &args)
    }

    /// A Pushgateway without persistence.
    ///
    /// # Panics
    /// When the package is missing or the server does not get ready.
    pub fn pushgateway() -> Server {
        if let Some(server) = external("FLEXT_TEST_PUSHGATEWAY_URL") {
            return server;
        }
        let dir = temp_dir("pushgateway");
        let port = free_port();
        let args = vec![format!("--web.listen-address=127.0.0.1:{port}"), "--persistence.file=".into(), "--web.enable-admin-api".into()];
        start("prometheus-pushgateway", dir, SocketAddr::from(([127, 0, 0, 1], port)), &args)
    }

    /// An Alertmanager without clustering, grouping after 1 s.
    ///
    /// # Panics
    /// When the package is missing or the server does not get ready.
    pub fn alertmanager() -> Server {
        if let Some(server) = external("FLEXT_TEST_ALERTMANAGER_URL") {
            return server;
        }
        let dir = temp_dir("alertmanager");
        let port = free_port();
        let config =
            "route:\n  receiver: default\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: default\n";
        std::fs::write(dir.join("alertmanager.yml"), config).expect("config");
        let args = vec![
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.external-url=http://127.0.0.1:{port}/"),
            "--cluster.listen-address=".into(),
        ];
        start("prometheus-alertmanager", dir, SocketAddr::from(([127, 0, 0, 1], port)), &args)
    }

    /// Percent-encodes a query parameter value.
    pub fn encode(value: &str) -> String {
        value
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    }
}
