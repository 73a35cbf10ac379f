//! The `/ui` page of the main example in real headless browsers, Debian's `chromium` (driven by
//! its `chromedriver`) and `firefox-esr` (driven by geckodriver, from crates.io), over
//! `WebDriver` with fantoccini: the function table shows
//! `Inventory::place_order` with a call rate that is not zero and changes between updates, the
//! rows sort and take the keyboard, a trace renders as a waterfall, errors show (in the table,
//! the alerts and a failed span), the page fits a phone's width, it made no request off
//! 127.0.0.1 and the browser logged no error. It saves a screenshot (`FLEXT_UI_SCREENSHOT`
//! names where; the README's is `docs/ui.png`).
//!
//! Without a browser or its driver the test says so loudly and skips that browser, unless
//! `FLEXT_REQUIRE_BROWSER=1` (Chromium) or `FLEXT_REQUIRE_FIREFOX=1` (set by `scripts/test.sh`
//! once it has installed them), when it fails. The console log is read in Chromium only.

use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use flext_obs_tests::example::{Example, example_command};
use flext_obs_tests::http::get;
use flext_obs_tests::servers::{free_port, temp_dir};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver child; killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The browser's console log (chromedriver's `se/log` command, which W3C `WebDriver` lacks).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }
    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| std::path::Path::new(dir).join(program)).find(|p| p.is_file())
}

/// Polls `check` every 250 ms for at most `limit`; its last answer.
async fn eventually<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn script(client: &Client, source: &str) -> Value {
    client.execute(source, Vec::new()).await.unwrap_or_else(|e| panic!("{source}: {e}"))
}

/// The text of the `place_order` row's cells, once the table shows it.
async fn place_order_cells(client: &Client) -> Option<Vec<String>> {
    let found = script(
        client,
        r##"const row = [...document.querySelectorAll("#functions tbody tr")].find(r => r.querySelector(".name")?.textContent === "Inventory::place_order");
           return row ? [...row.cells].map(c => c.textContent) : null;"##,
    )
    .await;
    serde_json::from_value(found).ok()
}

fn rate_of(cells: &[String]) -> f64 {
    cells[1].trim().parse().unwrap_or_else(|_| panic!("a calls/s cell: {cells:?}"))
}

/// A browser and its `WebDriver` server, as Debian (and crates.io, for geckodriver) ship them.
#[derive(Clone, Copy, PartialEq)]
enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }
    fn binary(self) -> &'static str {
        match self {
            Browser::Chromium => CHROMIUM,
            Browser::Firefox => FIREFOX,
        }
    }
    fn driver(self) -> &'static str {
        match self {
            Browser::Chromium => "chromedriver",
            Browser::Firefox => "geckodriver",
        }
    }
    /// The variable `scripts/test.sh` sets once it installed this browser: then a missing one
    /// fails the test instead of skipping it.
    fn required_by(self) -> &'static str {
        match self {
            Browser::Chromium => "FLEXT_REQUIRE_BROWSER",
            Browser::Firefox => "FLEXT_REQUIRE_FIREFOX",
        }
    }
    fn capabilities(self, profile: &std::path::Path) -> Value {
        match self {
            Browser::Chromium => json!({
                "browserName": "chrome",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    // Headless as root in a container; no background traffic (the network is closed).
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                             "--window-size=1280,1400", format!("--user-data-dir={}", profile.display())],
                },
            }),
            Browser::Firefox => json!({
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": FIREFOX,
                    "args": ["-headless", "-width=1280", "-height=1400"],
                    // No update, telemetry or safe-browsing traffic (the network is closed).
                    "prefs": {"app.update.disabledForTesting": true, "browser.safebrowsing.malware.enabled": false,
                              "browser.safebrowsing.phishing.enabled": false, "datareporting.policy.dataSubmissionEnabled": false,
                              "toolkit.telemetry.enabled": false, "network.captive-portal-service.enabled": false},
                },
            }),
        }
    }
}

const FIREFOX: &str = "/usr/bin/firefox-esr";

/// Starts `browser`'s `WebDriver` server and a session, or says loudly why it cannot (and fails
/// when the browser was required).
async fn session(browser: Browser) -> Option<(Driver, Client)> {
    let found = which(browser.driver()).filter(|_| std::path::Path::new(browser.binary()).exists());
    let Some(driver_path) = found else {
        let name = browser.name();
        assert!(
            std::env::var(browser.required_by()).as_deref() != Ok("1"),
            "{}=1 but {} or {} is missing",
            browser.required_by(),
            browser.binary(),
            browser.driver()
        );
        eprintln!("\n\n*** SKIPPED in {name}: the /ui browser test needs {} and {} ***\n\n", browser.binary(), browser.driver());
        return None;
    };
    let driver_port = free_port();
    let driver = Driver(
        Command::new(driver_path)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the WebDriver server starts"),
    );
    let driver_addr = SocketAddr::from(([127, 0, 0, 1], driver_port));
    // A listening port is enough: fantoccini asks for the session and says what fails.
    let up = eventually(Duration::from_secs(30), async || std::net::TcpStream::connect(driver_addr).ok()).await;
    assert!(up.is_some(), "{} listens", browser.driver());
    let profile = temp_dir("ui-browser-profile");
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(browser.capabilities(&profile).as_object().expect("an object").clone())
        .connect(&format!("http://{driver_addr}"))
        .await
        .unwrap_or_else(|e| panic!("a {} session: {e}", browser.name()));
    Some((driver, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_page_shows_the_main_example_live_in_real_chromium_and_firefox() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let _example = Example(
        example_command(&["--seconds", "300"])
            .env("FLEXT_METRICS_ADDR", addr.to_string())
            .env_remove("FLEXT_HTTP_ROUTES")
            .env_remove("FLEXT_HTTP_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts"),
    );
    let serving = eventually(Duration::from_secs(180), async || get(addr, "/ui/data", &[]).ok().filter(|r| r.status == 200)).await;
    assert!(serving.is_some(), "the example serves /ui/data");

    for browser in [Browser::Chromium, Browser::Firefox] {
        let Some((_driver, client)) = session(browser).await else { continue };
        let result = check_page(&client, addr, browser).await;
        let _ = client.close().await;
        result.unwrap_or_else(|failure| panic!("in {}: {failure}", browser.name()));
        eprintln!("/ui passed in {}", browser.name());
    }
}

async fn check_page(client: &Client, addr: SocketAddr, browser: Browser) -> Result<(), String> {
    let origin = format!("http://{addr}");
    client.goto(&format!("{origin}/ui")).await.map_err(|e| e.to_string())?;

    // The table shows place_order with a rate above zero (the rate needs two reads).
    let first = eventually(Duration::from_secs(20), async || place_order_cells(client).await.filter(|c| rate_of(c) > 0.0))
        .await
        .ok_or("the function table never showed Inventory::place_order with a non-zero calls/s")?;
    let reads_then = script(client, "return window.flextUi.reads").await.as_u64().unwrap_or(0);
    // ... and the rate changes from one update to another.
    let changed = eventually(Duration::from_secs(20), async || place_order_cells(client).await.filter(|c| c[1] != first[1]))
        .await
        .ok_or_else(|| format!("the calls/s of Inventory::place_order stayed {} across updates", first[1]))?;
    let reads_now = script(client, "return window.flextUi.reads").await.as_u64().unwrap_or(0);
    if reads_now <= reads_then {
        return Err(format!("the page did not read again ({reads_then} -> {reads_now})"));
    }
    // Errors are visible: place_order's error share (one order in seven fails) and an alert.
    if !first[2].contains('%') || first[2].trim_start().starts_with("0.0") {
        return Err(format!("place_order's error % should be above zero: {first:?}"));
    }
    let alert = eventually(Duration::from_secs(10), async || {
        let text =
            script(client, r##"return [...document.querySelectorAll("#alerts li.alert")].map(l => l.textContent).join("\n")"##).await;
        text.as_str().filter(|t| t.contains("Inventory::place_order failed")).map(str::to_owned)
    })
    .await;
    alert.ok_or("no alert for Inventory::place_order in the alerts list")?;

    let (bars, failed) = check_traces(client).await?;
    check_keyboard_and_sorting(client).await?;

    // The screenshot at 1280 px, for the README, once the sparklines have a few points.
    eventually(Duration::from_secs(20), async || script(client, "return window.flextUi.reads").await.as_u64().filter(|n| *n >= 12)).await;
    let png = client.screenshot().await.map_err(|e| e.to_string())?;
    let readme = std::env::var_os("FLEXT_UI_SCREENSHOT").filter(|_| browser == Browser::Chromium);
    let shot = readme.map_or_else(|| temp_dir("ui-screenshot").join(format!("ui-{}.png", browser.name())), Into::into);
    std::fs::write(&shot, &png).map_err(|e| format!("{}: {e}", shot.display()))?;
    eprintln!(
        "screenshot ({} bytes) in {}; {bars} span bars, {failed} failed; calls/s {} then {}",
        png.len(),
        shot.display(),
        first[1],
        changed[1]
    );
    check_phone_width_requests_and_console(client, &origin, browser).await
}

/// A trace renders as a waterfall with bars; a failed trace shows its failed span. Returns the
/// bars and the failed bars seen.
async fn check_traces(client: &Client) -> Result<(u64, u64), String> {
    let bars = eventually(Duration::from_secs(10), async || {
        script(client, "return document.querySelectorAll('#waterfall .span-row .span-bar').length").await.as_u64().filter(|n| *n > 0)
    })
    .await
    .ok_or("no trace waterfall rendered")?;
    let failed = eventually(Duration::from_secs(20), async || {
        let clicked = script(
            client,
            r##"const b = [...document.querySelectorAll("#trace-list button")].find(b => b.textContent.includes("✗"));
               if (b) { b.click(); } return !!b;"##,
        )
        .await;
        if clicked != Value::Bool(true) {
            return None;
        }
        script(client, "return document.querySelectorAll('#waterfall .span-bar.error').length").await.as_u64().filter(|n| *n > 0)
    })
    .await
    .ok_or("no failed trace with an error span in the waterfall")?;
    Ok((bars, failed))
}

/// Keyboard: Enter on a focused row shows its histogram, `ArrowDown` moves the focus; a click on
/// a column sorts; the caller graph has the example's edge.
async fn check_keyboard_and_sorting(client: &Client) -> Result<(), String> {
    // Keyboard: Enter on a focused row shows its histogram; ArrowDown moves the focus.
    let first_row = client.find(Locator::Css("#functions tbody tr")).await.map_err(|e| e.to_string())?;
    script(client, "document.querySelector('#functions tbody tr').focus()").await;
    first_row.send_keys(&Key::Enter.to_string()).await.map_err(|e| e.to_string())?;
    let focused_name = script(client, "return document.activeElement.querySelector('.name')?.textContent || ''").await;
    let histogram = script(client, "return document.getElementById('histogram-function').textContent").await;
    let focused_name = focused_name.as_str().unwrap_or_default().to_owned();
    if focused_name.is_empty() || !histogram.as_str().unwrap_or_default().contains(&focused_name) {
        return Err(format!("Enter on row {focused_name:?} should show its histogram, the heading says {histogram}"));
    }
    let buckets = script(client, "return document.querySelectorAll('#histogram rect.bucket').length").await.as_u64().unwrap_or(0);
    if buckets == 0 {
        return Err("the histogram has no bars".into());
    }
    let active = client.active_element().await.map_err(|e| e.to_string())?;
    active.send_keys(&Key::Down.to_string()).await.map_err(|e| e.to_string())?;
    let moved = script(client, "return document.activeElement.querySelector('.name')?.textContent || ''").await;
    if moved.as_str().unwrap_or_default() == focused_name {
        return Err(format!("ArrowDown left the focus on {focused_name}"));
    }
    // Sorting: a click on "Function" sorts by name ascending.
    client.find(Locator::Css("button[data-key=function]")).await.map_err(|e| e.to_string())?.click().await.map_err(|e| e.to_string())?;
    let names = script(client, "return [...document.querySelectorAll('#functions tbody .name')].map(n => n.textContent)").await;
    let names: Vec<String> = serde_json::from_value(names).unwrap_or_default();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    if names.len() < 2 || names != sorted {
        return Err(format!("sorted by function: {names:?}"));
    }
    // The caller graph has the place_order -> reserve edge.
    let edges = script(client, "return [...document.querySelectorAll('#callers path.edge title')].map(t => t.textContent)").await;
    if !edges.to_string().contains("Inventory::place_order → Inventory::reserve") {
        return Err(format!("the caller graph lacks place_order -> reserve: {edges}"));
    }

    Ok(())
}

/// A phone's width fits; every request went to the example; the console has no error.
async fn check_phone_width_requests_and_console(client: &Client, origin: &str, browser: Browser) -> Result<(), String> {
    // A phone's width: the page itself never scrolls sideways (wide tables scroll inside).
    client.set_window_size(390, 844).await.map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let overflow = script(client, "return document.documentElement.scrollWidth - document.documentElement.clientWidth").await;
    if overflow.as_i64().unwrap_or(i64::MAX) > 1 {
        return Err(format!("at 390 px the page is {overflow} px wider than the screen"));
    }

    // Every request the page made went to the example on 127.0.0.1.
    let urls = script(client, "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]").await;
    let urls: Vec<String> = serde_json::from_value(urls).unwrap_or_default();
    if urls.len() < 4 || urls.iter().any(|u| !u.starts_with(&format!("{origin}/"))) {
        return Err(format!("requests off {origin}: {urls:?}"));
    }
    // No error in the browser's console (Chromium's log; geckodriver has no log command), nor
    // one the page caught.
    let log = if browser == Browser::Chromium { client.issue_cmd(BrowserLog).await.map_err(|e| e.to_string())? } else { Value::Null };
    let severe: Vec<&Value> = log.as_array().into_iter().flatten().filter(|entry| entry["level"] == "SEVERE").collect();
    let caught = script(client, "return window.flextUi.errors").await;
    if !severe.is_empty() || caught.as_array().is_none_or(|e| !e.is_empty()) {
        return Err(format!("console errors: {severe:?}; caught by the page: {caught}"));
    }
    Ok(())
}
