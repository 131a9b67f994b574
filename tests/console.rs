//! The web console in a real browser (issue 15): Debian's headless Chromium driven through
//! chromedriver against the real gateway (HTTPS on port 0, sample data ingested, users added
//! with `xianjie users add`). Each test saves a screenshot of every page it visits under
//! `target/tmp/console-screenshots/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::webdriver::{self, Browser};
use common::{Gateway, secret_file};

const PASS: &str = "correct horse battery staple";
/// What a hostile source system may put in a party's name.
const XSS_NAME: &str = "<script>alert(1)</script>";

/// A user as `users add` enrolled them: the one-time password and the TOTP secret.
struct Enrolled {
    name: String,
    password: String,
    secret: Vec<u8>,
}

impl Enrolled {
    /// The authenticator's code now, waiting for a fresh step if `used` is this step's.
    fn code(&self, used: &mut Option<u64>) -> String {
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let step = now / 30;
            if used.is_none_or(|u| u < step) {
                *used = Some(step);
                let totp = totp_rs::TOTP::new_unchecked(
                    totp_rs::Algorithm::SHA1,
                    6,
                    1,
                    30,
                    self.secret.clone(),
                );
                return totp.generate(now);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

struct Env {
    tmp: tempfile::TempDir,
    gw: Gateway,
    /// The provincial simulator, when the test pushes.
    _sim: Option<common::Sim>,
    base: String,
    /// The unit whose port is open to the analyst's client, with supervision.
    unit: String,
    /// A unit whose port is not open to it.
    other_unit: String,
    /// A planted rule lead's case in `unit`, and its party's USCC.
    lead_case: String,
    lead_uscc: String,
    /// A case of `other_unit` and its party's name or code.
    other_case: String,
    other_uscc: String,
}

fn gbk_rows(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap();
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    r.records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn write_gbk_rows(path: &Path, rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r).unwrap();
    }
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    let (bytes, _, bad) = encoding_rs::GBK.encode(&text);
    assert!(!bad);
    std::fs::write(path, bytes).unwrap();
}

/// A gateway with the console on: sample data (one party renamed to a script tag), clients
/// `procuratorate` (port `unit` open with supervision) and `other` (port `other_unit`).
fn setup(extra: &str) -> Env {
    setup_with(|_, _| (format!("client_auth = \"optional\"\n{extra}"), None))
}

/// [`setup`], with `more(tmp, certs)` giving the configuration's last lines, under `[server]`
/// (and a simulator to keep running).
fn setup_with(more: impl FnOnce(&Path, &Path) -> (String, Option<common::Sim>)) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &["procuratorate".into(), "other".into()], false).unwrap();
    let samples = tmp.path().join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases: 400,
            bad_fraction: 0.0,
            seed: 5,
        },
    )
    .unwrap();
    // A planted rule lead on an organisation, its unit, and another unit's organisation.
    let planted = std::fs::read_to_string(samples.join("planted-leads.csv")).unwrap();
    let csv_path = samples.join("sunshine/sunshine-export.csv");
    let mut rows = gbk_rows(&csv_path);
    let h = rows[0].clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (id_c, unit_c, name_c, type_c, num_c) = (
        col("办件编号"),
        col("执法主体统一社会信用代码"),
        col("当事人名称"),
        col("证件类型"),
        col("证件号码"),
    );
    let (unit, lead_case, lead_uscc) = planted
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("sunshine,") && l.contains(",rule:"))
        .find_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let row = rows.iter().find(|r| r[id_c] == f[2])?;
            (row[type_c] == "统一社会信用代码")
                .then(|| (f[1].to_string(), f[2].to_string(), row[num_c].clone()))
        })
        .expect("a planted rule lead on an organisation");
    let other = rows[1..]
        .iter()
        .find(|r| r[unit_c] != unit && r[type_c] == "统一社会信用代码")
        .unwrap();
    let (other_unit, other_case, other_uscc) = (
        other[unit_c].clone(),
        other[id_c].clone(),
        other[num_c].clone(),
    );
    // A case in the analyst's unit whose party is named with a script tag.
    let xss = rows[1..]
        .iter()
        .position(|r| r[unit_c] == unit && r[id_c] != lead_case)
        .unwrap()
        + 1;
    rows[xss][name_c] = XSS_NAME.into();
    let xss_case = rows[xss][id_c].clone();
    write_gbk_rows(&csv_path, &rows);
    std::fs::write(tmp.path().join("xss-case"), &xss_case).unwrap();

    let data = tmp.path().join("data");
    let (extra, sim) = more(tmp.path(), &certs);
    let cfg = common::api_config(tmp.path(), &data, &certs, &extra);
    let pass = secret_file(&tmp.path().join("pass"), PASS);
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    gw.ok(&[
        "ingest",
        "sunshine",
        samples.join("sunshine").to_str().unwrap(),
    ]);
    gw.ok(&["clients", "add", "procuratorate"]);
    gw.ok(&["clients", "add", "other"]);
    gw.ok(&[
        "ports",
        "open",
        &unit,
        "--client",
        "procuratorate",
        "--supervise",
    ]);
    gw.ok(&["ports", "open", &other_unit, "--client", "other"]);
    let addr = std::fs::read_to_string(data.join("api.addr"))
        .unwrap()
        .trim()
        .to_string();
    Env {
        tmp,
        gw,
        _sim: sim,
        base: format!("https://{addr}"),
        unit,
        other_unit,
        lead_case,
        lead_uscc,
        other_case,
        other_uscc,
    }
}

impl Env {
    /// `xianjie users add NAME ARGS…`, read back as the administrator hands it over.
    fn add_user(&self, name: &str, args: &[&str]) -> Enrolled {
        let mut all = vec!["users", "add", name];
        all.extend_from_slice(args);
        let out = self.gw.ok(&all);
        let field = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("{k} in {out}"))
        };
        let uri = field("TOTP enrolment:");
        assert!(out.contains('█') || out.contains('▀'), "a QR code: {out}");
        let b32 = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("secret="))
            .unwrap();
        Enrolled {
            name: name.into(),
            password: field("one-time password:"),
            secret: totp_rs::Secret::Encoded(b32.into()).to_bytes().unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn xss_case(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("xss-case")).unwrap()
    }

    fn audit(&self, n: usize) -> Vec<serde_json::Value> {
        self.gw
            .ok(&["audit", "tail", "-n", &n.to_string(), "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Signs `u` in with `password` and a fresh code; returns the page's URL afterwards.
fn sign_in(
    b: &mut Browser,
    env: &Env,
    u: &Enrolled,
    password: &str,
    used: &mut Option<u64>,
) -> String {
    b.goto(&env.url("/console/login"));
    b.fill("#name", &u.name);
    b.fill("#password", password);
    let code = u.code(used);
    b.fill("#code", &code);
    b.click_and_wait("#submit");
    b.url()
}

/// First sign-in: the one-time password, then a password of one's own.
fn first_sign_in(b: &mut Browser, env: &Env, u: &Enrolled, used: &mut Option<u64>) -> String {
    let at = sign_in(b, env, u, &u.password, used);
    assert!(
        at.ends_with("/console/password"),
        "{at}: {}",
        b.text("body")
    );
    b.screenshot("password");
    let mine = format!("{}的新密码-2026", u.name);
    b.fill("#new-password", &mine);
    b.fill("#again", &mine);
    b.click_and_wait("#submit");
    assert!(b.url().ends_with("/console/"), "{}", b.text("body"));
    mine
}

fn skip() -> bool {
    if webdriver::available() {
        false
    } else {
        eprintln!("SKIPPED: chromium and chromedriver are not installed (.ci/run installs them)");
        true
    }
}

#[test]
fn an_analyst_recommends_on_a_lead_and_the_unit_answers_it() {
    if skip() {
        return;
    }
    let env = setup("");
    let analyst = env.add_user("ana", &["--role", "analyst", "--client", "procuratorate"]);
    let officer = env.add_user("officer", &["--role", "unit", "--unit", &env.unit]);
    let mut b = Browser::start("analyst-and-unit");
    let mut used = None;

    // Signed out, every page leads to the sign-in form.
    b.goto(&env.url("/console/leads"));
    assert!(b.url().contains("/console/login"), "{}", b.url());
    b.screenshot("login");
    first_sign_in(&mut b, &env, &analyst, &mut used);
    assert!(
        b.text("header").contains("检察分析人员"),
        "{}",
        b.text("header")
    );
    b.screenshot("analyst-dashboard");

    // The session cookie is __Host-, Secure, HttpOnly, SameSite=Strict.
    let cookie = b.cookie("__Host-xianjie").expect("the session cookie");
    assert_eq!(cookie["secure"], true);
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    assert_eq!(cookie["path"], "/");

    // Search the lead's party by USCC, open the lead.
    b.goto(&env.url("/console/search"));
    b.select("#by", "uscc");
    b.fill("#q", &env.lead_uscc);
    b.click_and_wait("#search");
    let results = b.text("#results");
    assert!(results.contains(&env.lead_case), "{results}");
    b.screenshot("search");
    b.click_and_wait(&format!("#results a[href*=\"{}\"]", env.lead_case));
    assert!(b.url().contains("/console/leads/"), "{}", b.url());
    let lead = b.text("main");
    assert!(
        lead.contains("追诉标准"),
        "facts next to thresholds: {lead}"
    );
    assert!(b.has("table.thresholds td.value"), "a fact with its value");
    b.screenshot("lead");

    // Write a recommendation; it shows in the case's timeline.
    let text = "经审查，本案涉案金额已达立案追诉标准，建议依法移送公安机关。";
    b.select("#kind", "recommend_transfer");
    b.fill("#text", text);
    b.click_and_wait("#send");
    assert!(b.url().contains("/console/cases/"), "{}", b.url());
    let timeline = b.text("#timeline");
    assert!(timeline.contains(text), "{timeline}");
    assert!(timeline.contains("建议移送"), "{timeline}");
    b.screenshot("case-with-recommendation");

    // The party named with a script tag shows as text; no script ran, none is in the page.
    b.goto(&env.url(&format!("/console/cases/{}/{}", env.unit, env.xss_case())));
    let main = b.text("main");
    assert!(main.contains(XSS_NAME), "{main}");
    assert!(!b.source().contains(XSS_NAME), "escaped in the HTML");
    assert!(
        b.execute("return document.querySelectorAll('script').length")
            .as_u64()
            == Some(0)
    );
    b.screenshot("script-name-as-text");

    // The district administrator's pages are not an analyst's.
    for page in [
        "/console/push",
        "/console/ports",
        "/console/audit",
        "/console/quarantine",
    ] {
        b.goto(&env.url(page));
        assert!(
            b.text("h1").contains("无权访问"),
            "{page}: {}",
            b.text("main")
        );
    }
    b.goto(&env.url("/console/transfers"));
    assert!(b.has("#transfers"), "{}", b.text("main"));

    // Neither by link nor by search does another port's case show.
    b.goto(&env.url(&format!(
        "/console/cases/{}/{}",
        env.other_unit, env.other_case
    )));
    assert!(b.text("h1").contains("无权查看"), "{}", b.text("main"));
    assert!(!b.text("main").contains(&env.other_uscc));
    b.screenshot("other-port-by-link");
    b.goto(&env.url(&format!(
        "/console/leads/{}/{}",
        env.other_unit, env.other_case
    )));
    assert!(b.text("h1").contains("无权查看"));
    b.goto(&env.url(&format!("/console/search?by=uscc&q={}", env.other_uscc)));
    assert!(
        b.text("#results").contains("没有找到"),
        "{}",
        b.text("#results")
    );
    assert!(!b.text("main").contains(&env.other_case));
    b.screenshot("other-port-by-search");

    // Sign out; the unit's officer signs in, sees the recommendation and answers it.
    b.click_and_wait("header button");
    assert!(b.url().contains("/console/login"));
    first_sign_in(&mut b, &env, &officer, &mut None);
    assert!(
        b.text("main").contains("待本单位答复"),
        "{}",
        b.text("main")
    );
    b.screenshot("unit-dashboard");
    b.goto(&env.url(&format!("/console/cases/{}/{}", env.unit, env.lead_case)));
    assert!(b.text(".action").contains(text), "{}", b.text("main"));
    let answer = "已于当日将案件材料移送区公安分局，移送文书号附后。";
    b.fill(".answer-form textarea", answer);
    b.click_and_wait(".answer-form button");
    let timeline = b.text("#timeline");
    assert!(timeline.contains(answer), "{timeline}");
    assert!(b.text(".action .answer").contains("officer"));
    b.screenshot("unit-answered");

    // Every page with case data was audited, by the person who read it.
    let audit = env.audit(400);
    let by = |who: &str, action: &str| {
        audit.iter().any(|e| {
            e["actor"]["id"] == who && e["actor"]["kind"] == "user" && e["action"] == action
        })
    };
    for action in [
        "console.login",
        "console.search",
        "console.lead.read",
        "console.case.read",
        "supervision.write",
        "console.logout",
    ] {
        assert!(by("ana", action), "ana {action}");
    }
    assert!(audit.iter().any(|e| e["actor"]["id"] == "ana"
        && e["action"] == "console.case.read"
        && e["outcome"] == "denied"));
    assert!(by("officer", "supervision.answer"));
}

#[test]
fn forms_need_their_token_idle_sessions_end_and_guessing_locks_the_account() {
    if skip() {
        return;
    }
    let env = setup("console_idle_timeout_secs = 3\n");
    let analyst = env.add_user("ana", &["--role", "analyst", "--client", "procuratorate"]);
    let mut b = Browser::start("guards");
    let mut used = None;
    first_sign_in(&mut b, &env, &analyst, &mut used);

    // A form whose CSRF token is removed is refused with 403, and nothing is written.
    b.goto(&env.url(&format!("/console/leads/{}/{}", env.unit, env.lead_case)));
    b.fill("#text", "无令牌的意见");
    b.execute("document.querySelector('#supervise input[name=csrf]').remove()");
    b.click_and_wait("#send");
    assert!(b.text("h1").contains("请求被拒绝"), "{}", b.text("main"));
    b.screenshot("csrf-refused");
    let status = env
        .https(
            None,
            "POST",
            &format!("/console/cases/{}/{}/supervision", env.unit, env.lead_case),
            &[
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("cookie", session_cookie(&b)),
            ],
            "kind=note&text=x",
        )
        .status;
    assert_eq!(status, 403);
    b.goto(&env.url(&format!("/console/cases/{}/{}", env.unit, env.lead_case)));
    assert!(!b.text("#timeline").contains("无令牌的意见"));

    // Idle past the (configured, 3 s) timeout: the next page asks to sign in again.
    std::thread::sleep(std::time::Duration::from_secs(4));
    b.goto(&env.url("/console/"));
    assert!(b.url().contains("/console/login"), "{}", b.url());
    assert!(b.text("#message").contains("超时"), "{}", b.text("main"));
    b.screenshot("idle-expired");

    // Five wrong passwords lock the account: then even the right one is refused.
    for _ in 0..5 {
        sign_in(&mut b, &env, &analyst, "not-the-password", &mut None);
        assert!(b.text("#message").contains("不正确"), "{}", b.text("main"));
    }
    let at = sign_in(
        &mut b,
        &env,
        &analyst,
        &format!("{}的新密码-2026", analyst.name),
        &mut used,
    );
    assert!(at.contains("/console/login"), "{at}");
    assert!(b.text("#message").contains("锁定"), "{}", b.text("main"));
    b.screenshot("locked");
    let listed = env.gw.ok(&["users", "list"]);
    assert!(listed.contains("locked until"), "{listed}");

    // `users reset` ends the lock with a new one-time password and TOTP secret; the old
    // password is gone.
    let out = env.gw.ok(&["users", "reset", "ana"]);
    assert!(out.contains("one-time password:"), "{out}");
    let reset = Enrolled {
        password: out
            .lines()
            .find_map(|l| {
                l.strip_prefix("one-time password:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap(),
        secret: totp_rs::Secret::Encoded(
            out.split(['?', '&'])
                .find_map(|p| p.strip_prefix("secret="))
                .unwrap()
                .to_string(),
        )
        .to_bytes()
        .unwrap(),
        name: "ana".into(),
    };
    let mine = first_sign_in(&mut b, &env, &reset, &mut None);
    b.screenshot("after-reset");

    // `users disable` ends the session at its next request, and no sign-in works after it.
    let out = env.gw.ok(&["users", "disable", "ana"]);
    assert!(out.contains("disabled"), "{out}");
    b.goto(&env.url("/console/"));
    assert!(b.url().contains("/console/login"), "{}", b.url());
    let at = sign_in(&mut b, &env, &reset, &mine, &mut None);
    assert!(at.contains("/console/login") && b.text("#message").contains("不正确"));
    let listed = env.gw.json(&["users", "list", "--json"]);
    assert!(listed[0]["disabled_at"].is_string(), "{listed}");
    assert!(
        env.gw
            .fails(&["users", "reset", "ana"])
            .contains("disabled")
    );
    assert!(
        env.gw
            .fails(&["users", "add", "x", "--role", "analyst"])
            .contains("client")
    );
    assert!(
        env.gw
            .fails(&[
                "users", "add", "x", "--role", "analyst", "--client", "nobody"
            ])
            .contains("does not exist")
    );
    let audit = env.audit(200);
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "console.csrf" && e["outcome"] == "denied")
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "console.login" && e["outcome"] == "denied")
    );
    // Sign-ins from one address are throttled as token requests are: a burst gets 429 with
    // Retry-After before any password is checked, audited once.
    let form = login_form(&env, None);
    let throttled = (0..40).find_map(|_| {
        let r = env.post_login(None, &form, "nobody", "guess-guess-guess", "000000");
        (r.status == 429).then_some(r)
    });
    let r = throttled.expect("a burst of sign-ins is throttled");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(String::from_utf8_lossy(&r.body).contains("过于频繁"));
    let audit = env.audit(300);
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "console.login" && e["details"]["reason"] == "throttled")
    );
    for action in [
        "console.user.list",
        "console.user.add",
        "console.user.reset",
        "console.user.disable",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e["action"] == action && e["actor"]["kind"] == "admin"),
            "{action}"
        );
    }
}

#[test]
fn an_administrator_requeues_a_dead_letter_and_opens_a_port() {
    if skip() {
        return;
    }
    // The platform refuses every package, so every record sent ends as a dead letter.
    let env = setup_with(|tmp, certs| {
        let sim = common::start_sim(tmp, certs, "400x1000000");
        let dest = format!(
            "client_auth = \"optional\"\n[[destinations]]\nname = \"province\"\nurl = \"https://{}/packages\"\nca = {:?}\nactions = [\"inspection\", \"penalty\", \"licensing\"]\ncredential = \"province\"\nauth = \"bearer\"\nschedule = \"0 0 0 1 1 *\"\nbatch_size = 200\nretry_initial_ms = 20\nretry_max_ms = 200\ntimeout_secs = 10\ngive_up_secs = 120\n",
            sim.addr,
            certs.join("ca.pem").display().to_string()
        );
        (dest, Some(sim))
    });
    let out = env
        .gw
        .cli_stdin(&["credentials", "set", "province"], common::CREDENTIAL);
    assert!(out.status.success(), "{out:?}");
    let report = env.gw.json(&["push", "run", "--json"]);
    let dead = report[0]["dead_lettered"].as_u64().unwrap();
    assert!(dead > 1, "{report}");
    let admin = env.add_user("boss", &["--role", "admin"]);
    let mut b = Browser::start("administrator");
    first_sign_in(&mut b, &env, &admin, &mut None);
    assert!(b.text("main").contains("推送死信"), "{}", b.text("main"));
    b.screenshot("admin-dashboard");

    // The push page lists the dead letters; one is requeued.
    b.goto(&env.url("/console/push"));
    let rows = b.text("#dead-letters");
    assert!(rows.contains("HTTP-400"), "{rows}");
    b.screenshot("push-dead-letters");
    let first = env.gw.json(&["push", "dead", "list", "--json"])[0]["id"]
        .as_u64()
        .unwrap();
    b.click_and_wait(&format!("#dead-{first} button"));
    assert!(
        b.text("#notice").contains("已重新排队"),
        "{}",
        b.text("main")
    );
    assert!(
        !b.has(&format!("#dead-{first}")),
        "requeued: gone from the list"
    );
    b.screenshot("push-requeued");
    let status = env.gw.json(&["push", "status", "--json"]);
    assert_eq!(status[0]["dead_letters"], dead - 1, "{status}");
    assert_eq!(status[0]["queued"], 1, "{status}");
    let shown = env.gw.cli(&["push", "dead", "show", &first.to_string()]);
    assert!(!shown.status.success(), "no dead letter {first} any more");

    // A port opened from the ports page, with supervision.
    b.goto(&env.url("/console/ports"));
    b.screenshot("ports");
    b.select("#unit", &env.other_unit);
    b.select("#client", "procuratorate");
    b.click("#supervise");
    b.click_and_wait("#open");
    assert!(
        b.text("#notice").contains("端口已开放"),
        "{}",
        b.text("main")
    );
    let ports = b.text("#ports");
    assert!(
        ports.contains(&env.other_unit) && ports.contains("boss"),
        "{ports}"
    );
    b.screenshot("port-opened");
    let listed = env.gw.json(&["ports", "list", "--json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["unit_code"] == env.other_unit.as_str()
                && p["client"] == "procuratorate"
                && p["supervise"] == true
                && p["opened_by"] == "boss"),
        "{listed}"
    );

    // The administrator sees no case: the district view has counts, not case files.
    b.goto(&env.url(&format!("/console/cases/{}/{}", env.unit, env.lead_case)));
    assert!(b.text("h1").contains("无权查看"), "{}", b.text("main"));

    // Quarantine and quarterly reports: a quarter built, its disclosure downloaded.
    b.goto(&env.url("/console/quarantine"));
    assert!(b.has("#quarantine"), "{}", b.text("main"));
    b.goto(&env.url("/console/reports"));
    let quarter = b
        .text("select[name=quarter] option:checked")
        .trim()
        .to_string();
    env.gw.ok(&["reports", "build", "--quarter", &quarter]);
    b.goto(&env.url(&format!("/console/reports?quarter={quarter}")));
    assert!(
        b.text("#report-status").contains("网关计算"),
        "{}",
        b.text("main")
    );
    b.screenshot("reports");
    let cookie = session_cookie(&b);
    let href = b.attribute("#dl-xlsx", "href").unwrap();
    let r = env.https(None, "GET", &href, &[("cookie", cookie.clone())], "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body.starts_with(b"PK"), "an XLSX workbook");
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let r = env.https(
        None,
        "GET",
        &href.replace("xlsx", "html"),
        &[("cookie", cookie)],
        "",
    );
    assert!(
        String::from_utf8_lossy(&r.body).contains("行政执法"),
        "the disclosure page"
    );

    // The audit log page: the latest signed checkpoint, and an entry proved on the server.
    b.goto(&env.url("/console/audit?action=port."));
    assert!(
        b.text("#entries").contains("port.open"),
        "{}",
        b.text("#entries")
    );
    b.fill("#index", "3");
    b.click_and_wait("#prove");
    assert!(b.text("#proof").contains("包含在"), "{}", b.text("main"));
    b.screenshot("audit-proof");

    let audit = env.audit(100);
    // A unit's officer watches the unit's own push queue and deadlines.
    let officer = env.add_user("officer", &["--role", "unit", "--unit", &env.unit]);
    b.click_and_wait("header button");
    first_sign_in(&mut b, &env, &officer, &mut None);
    let main = b.text("main");
    assert!(main.contains("本单位推送逾期或临近期限"), "{main}");
    assert!(
        b.text("main table").contains("province") || main.contains("province"),
        "{main}"
    );
    b.screenshot("unit-push-deadlines");

    for action in ["push.requeue", "port.open", "reports.disclose"] {
        assert!(
            audit.iter().any(|e| e["action"] == action
                && e["actor"]["id"] == "boss"
                && e["actor"]["kind"] == "user"),
            "{action}"
        );
    }
}

/// The sign-in form over plain HTTPS, presenting client certificate `cert`: its cookie and its
/// CSRF token.
fn login_form(env: &Env, cert: Option<&str>) -> (String, String) {
    let r = env.https(cert, "GET", "/console/login", &[], "");
    assert_eq!(r.status, 200);
    let cookie = set_cookie(&r, "__Host-xianjie-login");
    let body = String::from_utf8(r.body).unwrap();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    (cookie, csrf)
}

/// The browser's session cookie as a `Cookie` header value.
fn session_cookie(b: &Browser) -> String {
    let c = b.cookie("__Host-xianjie").expect("a session cookie");
    format!("__Host-xianjie={}", c["value"].as_str().unwrap())
}

/// The `name=value` of cookie `name` set by `r`.
fn set_cookie(r: &common::Reply, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("{name} set: {:?}", r.headers))
        .to_string()
}

impl Env {
    /// One request over plain HTTPS presenting client certificate `cert` (or none).
    fn https(
        &self,
        cert: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> common::Reply {
        self.try_https(cert, method, path, headers, body).unwrap()
    }

    fn try_https(
        &self,
        cert: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<common::Reply, String> {
        common::https_as(
            &self.tmp.path().join("certs"),
            cert,
            self.base.trim_start_matches("https://"),
            method,
            path,
            headers,
            body.as_bytes().to_vec(),
        )
    }

    /// Posts the sign-in form (`form` from [`login_form`]).
    fn post_login(
        &self,
        cert: Option<&str>,
        form: &(String, String),
        name: &str,
        password: &str,
        code: &str,
    ) -> common::Reply {
        self.https(
            cert,
            "POST",
            "/console/login",
            &[
                ("cookie", form.0.clone()),
                ("content-type", "application/x-www-form-urlencoded".into()),
            ],
            &format!(
                "csrf={}&name={name}&password={password}&code={code}",
                form.1
            ),
        )
    }
}

#[test]
fn with_client_certificates_required_a_session_is_bound_to_its_certificate() {
    let env = setup_with(|_, _| ("client_auth = \"required\"\n".into(), None));
    let analyst = env.add_user("ana", &["--role", "analyst", "--client", "procuratorate"]);
    // No certificate, no console: the handshake itself is refused.
    assert!(
        env.try_https(None, "GET", "/console/login", &[], "")
            .is_err()
    );
    let form = login_form(&env, Some("procuratorate"));
    let r = env.post_login(
        Some("procuratorate"),
        &form,
        "ana",
        &analyst.password,
        &analyst.code(&mut None),
    );
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.headers["location"], "/console/password");
    let session = set_cookie(&r, "__Host-xianjie");
    let get = |cert: &str| {
        env.https(
            Some(cert),
            "GET",
            "/console/password",
            &[("cookie", session.clone())],
            "",
        )
    };
    let r = get("procuratorate");
    assert_eq!(r.status, 200);
    for h in [
        "content-security-policy",
        "referrer-policy",
        "x-frame-options",
        "strict-transport-security",
    ] {
        assert!(r.headers.contains_key(h), "{h}");
    }
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    // The same cookie over a connection showing another certificate: the session ends.
    let r = get("other");
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/console/login?why=certificate");
    assert_eq!(
        get("procuratorate").headers["location"],
        "/console/login?why=none"
    );
    let audit = env.audit(50);
    assert!(audit.iter().any(|e| e["action"] == "console.login"
        && e["outcome"] == "ok"
        && e["actor"]["id"] == "ana"));
}
