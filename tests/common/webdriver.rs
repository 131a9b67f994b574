//! A small W3C WebDriver client for the console's browser tests: Debian's `chromedriver` driving
//! headless `chromium`, over plain HTTP on loopback. Every page a test visits can be saved as a
//! PNG screenshot under `target/tmp/console-screenshots/<test>/` (the CI artifacts).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium under WebDriver, closed on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    shots: PathBuf,
    taken: usize,
}

/// Whether the browser tests can run here (CI installs both).
pub fn available() -> bool {
    Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; screenshots go under `test`.
    pub fn start(test: &str) -> Browser {
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("console-screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            shots,
            taken: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The gateway's certificate comes from the test's own CA, which the browser's store does
        // not hold; the tests check TLS elsewhere, here they check pages.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=zh-CN"]
            }
        }}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap().to_string();
        b
    }

    /// One WebDriver command; its `value`. Panics on a WebDriver error, naming it.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.try_call(method, path, body);
        assert!(status < 300, "WebDriver {method} {path}: {status} {v}");
        v
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // Read the head, then exactly Content-Length bytes (chromedriver keeps connections open).
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        let head_end = loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "chromedriver closed the connection");
            raw.extend_from_slice(&buf[..n]);
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("chromedriver answers with a Content-Length");
        while raw.len() < head_end + len {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "chromedriver closed the connection mid-answer");
            raw.extend_from_slice(&buf[..n]);
        }
        let v: Value =
            serde_json::from_slice(&raw[head_end..head_end + len]).unwrap_or(Value::Null);
        (status, v["value"].clone())
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn find_opt(&self, css: &str) -> Option<String> {
        let (status, v) = self.try_call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        (status < 300).then(|| v[ELEMENT].as_str().unwrap().to_string())
    }

    /// Whether an element matches `css`.
    pub fn has(&self, css: &str) -> bool {
        self.find_opt(css).is_some()
    }

    fn find(&self, css: &str) -> String {
        self.find_opt(css)
            .unwrap_or_else(|| panic!("no element {css} on {}: {}", self.url(), self.text("body")))
    }

    /// Types `text` into the field `css` (after clearing it).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Chooses the option with value `value` of the select `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    /// Clicks the element `css` (a submit button submits its form and the page loads).
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    /// Clicks the element `css` (a link or a submit button) and waits until the next page has
    /// loaded: the old document is marked first, so a read never sees the page being left.
    pub fn click_and_wait(&self, css: &str) {
        self.execute("window.__xianjie_old_page = true;");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.execute(
                "return document.readyState === 'complete' && window.__xianjie_old_page === undefined;",
            );
            if v == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The visible text of the element `css`.
    pub fn text(&self, css: &str) -> String {
        match self.find_opt(css) {
            Some(e) => self
                .call("GET", &self.s(&format!("/element/{e}/text")), None)
                .as_str()
                .unwrap_or("")
                .to_string(),
            None => String::new(),
        }
    }

    /// An attribute of the element `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css);
        self.call(
            "GET",
            &self.s(&format!("/element/{e}/attribute/{name}")),
            None,
        )
        .as_str()
        .map(str::to_string)
    }

    /// Runs `script` in the page (the test's own script; pages themselves may run none).
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The browser's cookies for the current page.
    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", &self.s("/cookie"), None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The browser's cookie `name`, if it holds one for the current page.
    pub fn cookie(&self, name: &str) -> Option<Value> {
        self.cookies().into_iter().find(|c| c["name"] == name)
    }

    /// Saves a screenshot of the page as `NN-name.png`; returns its path.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        self.taken += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &self.s(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
