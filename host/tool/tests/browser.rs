//! `report.html` in a real browser: `lmem report` renders a small fixed report.json
//! (`tests/fixtures/report.json`: every scenario, two workloads, every configuration), and
//! headless Chromium opens the page. The page must load, hold its charts (SVG elements with a
//! size), and log no console error and no exception.
//!
//! Chromium is driven over its DevTools protocol on a pipe (`--remote-debugging-pipe`: it reads
//! commands on fd 3 and writes answers and events on fd 4, each message JSON ended by a NUL), so
//! no port is opened. Without Chromium the test fails, naming the Debian package: CI installs it.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(30);

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found in PATH: this test opens report.html in headless Chromium; \
         install Debian's package `chromium` (apt-get install -y chromium)"
    );
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid for two ints; pipe2 fills both on success.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just made by pipe2 and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Headless Chromium with the DevTools protocol on a pipe.
struct Browser {
    child: Child,
    to: std::fs::File,
    from: Receiver<Value>,
    next_id: u64,
    /// Every event seen, in order.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_read, cmd_write) = pipe(); // we write commands, Chromium reads fd 3
        let (out_read, out_write) = pipe(); // Chromium writes fd 4, we read
        let (r3, w4) = (cmd_read.into_raw_fd(), out_write.into_raw_fd());
        let mut cmd = Command::new(chromium());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2) run on
        // descriptors open in this process. Both are first copied above 10, so that neither
        // target (3, 4) is a source, and the copies lose close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                let (a, b) = (
                    libc::fcntl(r3, libc::F_DUPFD, 10),
                    libc::fcntl(w4, libc::F_DUPFD, 10),
                );
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        // SAFETY: the raw descriptors were ours (from `into_raw_fd`); the child has its copies.
        unsafe {
            drop(OwnedFd::from_raw_fd(r3));
            drop(OwnedFd::from_raw_fd(w4));
        }
        let (tx, rx) = channel();
        let reader = std::fs::File::from(out_read);
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        Browser {
            child,
            to: std::fs::File::from(cmd_write),
            from: rx,
            next_id: 1,
            events: Vec::new(),
            _profile: profile,
        }
    }

    /// Sends a command (to a page session if given) and waits for its answer.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer from chromium to {method}"));
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for the event `method` of `session` (or returns it if it came already).
    fn wait_for(&mut self, session: &str, method: &str) -> Value {
        if let Some(e) = self
            .events
            .iter()
            .find(|e| e["method"] == method && e["sessionId"] == session)
        {
            return e.clone();
        }
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {method} from chromium"));
            self.events.push(v.clone());
            if v["method"] == method && v["sessionId"] == session {
                return v;
            }
        }
    }

    /// Opens `url` in a new page; returns its session once the page has loaded.
    fn open(&mut self, url: &str) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let s = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(Some(&s), domain, json!({}));
        }
        let nav = self.call(Some(&s), "Page.navigate", json!({"url": url}));
        assert!(nav["errorText"].is_null(), "{url} did not load: {nav}");
        self.wait_for(&s, "Page.loadEventFired");
        s
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Console errors, exceptions and error log entries of `session` so far.
    fn errors(&self, session: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["sessionId"] == session)
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.consoleAPICalled"
                        if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                    {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Runtime.exceptionThrown" => {
                        Some(format!("exception: {}", p["exceptionDetails"]))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => {
                        Some(format!("log: {}", p["entry"]["text"]))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut bytes = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap();
        bytes.push(0);
        let _ = self.to.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn report_html_loads_in_chromium_with_its_charts_and_no_console_error() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_lmem"))
        .arg("report")
        .arg(&fixture)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = dir.path().join("report.html");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();

    let mut b = Browser::start();

    // The check sees errors: a page that logs one is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><title>t</title><script>console.error('boom')</script>",
    )
    .unwrap();
    let s = b.open(&format!("file://{}", bad.display()));
    b.eval(&s, "1");
    assert!(
        b.errors(&s).iter().any(|e| e.contains("boom")),
        "{:?}",
        b.errors(&s)
    );

    let s = b.open(&format!("file://{}", html.display()));
    let page = b.eval(
        &s,
        "JSON.stringify({
            title: document.title,
            h1: document.querySelector('h1').textContent,
            svgs: [...document.querySelectorAll('figure svg')].map(e => {
                const r = e.getBoundingClientRect();
                return {w: r.width, h: r.height, rects: e.querySelectorAll('rect').length,
                        texts: [...e.querySelectorAll('text')].map(t => t.textContent.trim())};
            }),
            headings: [...document.querySelectorAll('h2')].map(e => e.textContent),
            notDrawn: document.body.innerText.includes('chart not drawn'),
            tables: document.querySelectorAll('table').length,
        })",
    );
    let page: Value = serde_json::from_str(page.as_str().unwrap()).unwrap();
    assert_eq!(page["title"], "lmem bench report");
    assert_eq!(page["notDrawn"], false);
    let svgs = page["svgs"].as_array().unwrap();
    // Time, memory, the comparison, start-up, states (2), trim.
    assert_eq!(svgs.len(), 7, "{page}");
    for svg in svgs {
        assert!(svg["w"].as_f64().unwrap() > 200.0, "{svg}");
        assert!(svg["h"].as_f64().unwrap() > 100.0, "{svg}");
        assert!(svg["rects"].as_u64().unwrap() > 3, "{svg}");
    }
    // Every configuration is in the legend of the time chart, with the values on the bars.
    let texts: Vec<&str> = svgs[0]["texts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for c in fixture["configurations"].as_array().unwrap() {
        assert!(texts.contains(&c["name"].as_str().unwrap()), "{texts:?}");
    }
    assert!(
        texts.contains(&"1.00"),
        "system's own ratio on its bar: {texts:?}"
    );
    let headings = page["headings"].to_string();
    for h in [
        "Targets",
        "Time",
        "Memory",
        "Start-up",
        "Many small states",
        "Trim",
    ] {
        assert!(headings.contains(h), "{headings}");
    }
    assert!(page["tables"].as_u64().unwrap() >= 10, "{page}");
    assert_eq!(b.errors(&s), Vec::<String>::new(), "console errors");
}
