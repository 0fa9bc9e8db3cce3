//! The HTTP API in-process: the router of `sambung_server::web` on a fresh SQLite store, called
//! without sockets. Sign-up under each policy, sign-in and its limits, sessions and their
//! cookie, CSRF, API tokens, administration, problem details, paging and the OpenAPI document.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use sambung_server::config::{Config, Signup};
use sambung_server::web::api::ClientAddr;
use sambung_server::web::{WebState, router};
use sambung_store::{NewAccount, NewWebSession, Store};
use serde_json::{Value, json};
use tower_service::Service as _;

struct Api {
    router: Router,
    store: Store,
    hub: sambung_server::presence::Hub,
    /// What the API handed call control (messages to deliver), and the queue's sender.
    core: tokio::sync::mpsc::Receiver<sambung_server::transport::Event>,
    _events: sambung_server::transport::Events,
    dir: std::path::PathBuf,
}

/// What one request got.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
    /// The body as text (for answers that are not JSON).
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }

    fn cookie(&self) -> String {
        let set = self.headers[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }
}

/// A browser: the cookie and CSRF token of its session, and the address it comes from.
#[derive(Clone, Debug, Default)]
struct Browser {
    cookie: Option<String>,
    csrf: Option<String>,
    bearer: Option<String>,
    from: Option<SocketAddr>,
    origin: Option<&'static str>,
}

impl Browser {
    fn signed_in(answer: &Answer) -> Browser {
        Browser {
            cookie: Some(answer.cookie()),
            csrf: answer.json["csrf_token"].as_str().map(str::to_owned),
            ..Browser::default()
        }
    }

    fn token(secret: &str) -> Browser {
        Browser { bearer: Some(secret.to_owned()), ..Browser::default() }
    }
}

impl Api {
    async fn new(tag: &str, edit: impl FnOnce(&mut Config)) -> Api {
        let dir = std::env::temp_dir().join(format!("sambung-web-api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.join("sambung.db").display())).await.unwrap();
        let mut config = Config { domains: vec!["example.com".into()], ..Config::default() };
        edit(&mut config);
        let hub = sambung_server::presence::Hub::new();
        let (events, mut queues) = sambung_server::transport::Events::channels(1, 64);
        let logged_out = store.agents_logged_out().await.unwrap();
        let call_queues =
            sambung_server::apps::queue::Queues::new(config.queues(), &logged_out, None, std::time::Instant::now());
        let state = WebState::new(store.clone(), &config, hub.clone())
            .with_core(events.downgrade(), std::sync::Arc::new(tokio::sync::Notify::new()))
            .with_queues(call_queues)
            .with_recordings(dir.join("recordings"));
        let router = router(state);
        Api { router, store, hub, core: queues.remove(0), _events: events, dir }
    }

    async fn send(&mut self, who: &Browser, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, "127.0.0.1:7443");
        if let Some(cookie) = &who.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(csrf) = &who.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        if let Some(bearer) = &who.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        if let Some(origin) = who.origin {
            request = request.header(header::ORIGIN, origin);
        }
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        let from = who.from.unwrap_or_else(|| "127.0.0.1:50000".parse().unwrap());
        request.extensions_mut().insert(ClientAddr(from));
        let response = self.router.call(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, json, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&mut self, who: &Browser, path: &str) -> Answer {
        self.send(who, Method::GET, path, None).await
    }

    async fn post(&mut self, who: &Browser, path: &str, body: Value) -> Answer {
        self.send(who, Method::POST, path, Some(body)).await
    }

    async fn sign_up(&mut self, username: &str, password: &str) -> Answer {
        let body = json!({ "username": username, "password": password });
        self.post(&Browser::default(), "/api/v1/signup", body).await
    }

    async fn sign_in(&mut self, username: &str, password: &str) -> Answer {
        let body = json!({ "username": username, "password": password });
        self.post(&Browser::default(), "/api/v1/session", body).await
    }

    async fn admin(&mut self) -> Browser {
        let account = NewAccount::new("root", "velvet lantern 19", "example.com").admin();
        self.store.create_account(account).await.unwrap();
        let answer = self.sign_in("root", "velvet lantern 19").await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        Browser::signed_in(&answer)
    }

    async fn close(self) {
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn assert_problem(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/problem+json", "{answer:?}");
    assert_eq!(answer.json["status"], status.as_u16(), "{answer:?}");
    assert_eq!(answer.json["type"], "about:blank");
    assert_eq!(answer.code(), code, "{answer:?}");
    assert!(!answer.json["detail"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn sign_up_and_sign_in() {
    let mut api = Api::new("signup", |_| {}).await;
    assert_eq!(api.get(&Browser::default(), "/api/v1/signup").await.json["mode"], "open");
    let answer = api.sign_up("alice", "velvet lantern 19").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    let set = answer.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-sambung-session="), "{set}");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing from {set}");
    }
    assert_eq!(answer.json["account"]["username"], "alice");
    assert_eq!(answer.json["account"]["sip_uri"], "sip:alice@example.com");
    assert_eq!(answer.json["account"]["admin"], false);
    let alice = Browser::signed_in(&answer);
    let me = api.get(&alice, "/api/v1/me").await;
    assert_eq!((me.status, me.json["username"].as_str()), (StatusCode::OK, Some("alice")));

    // The account is a SIP account at once: its digest HA1 is for the configured realm.
    let stored = api.store.account_by_username("alice").await.unwrap().unwrap();
    assert_eq!(stored.realm, "example.com");
    let ha1 =
        sambung_sip::digest::ha1(sambung_sip::digest::Algorithm::Md5, "alice", "example.com", "velvet lantern 19");
    assert_eq!(stored.ha1_md5, ha1);

    assert_problem(&api.sign_up("alice", "another good secret").await, StatusCode::CONFLICT, "user_exists");
    assert_problem(&api.sign_up("bob", "password").await, StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    assert_problem(&api.sign_up("Bob!", "a good secret").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_username");
    let bad_email = json!({ "username": "bob", "password": "velvet lantern 19", "email": "nope" });
    assert_problem(
        &api.post(&Browser::default(), "/api/v1/signup", bad_email).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
    );

    // Signing in again, out, and the session's end.
    let again = api.sign_in("alice", "velvet lantern 19").await;
    assert_eq!(again.status, StatusCode::OK);
    let second = Browser::signed_in(&again);
    let current = api.get(&second, "/api/v1/session").await;
    assert_eq!(current.json["csrf_token"], again.json["csrf_token"]);
    let out = api.send(&second, Method::DELETE, "/api/v1/session", None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_problem(&api.get(&second, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(api.get(&alice, "/api/v1/me").await.status, StatusCode::OK, "the other session stays");
    assert_problem(&api.get(&Browser::default(), "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    api.close().await;
}

#[tokio::test]
async fn wrong_passwords_are_limited() {
    let mut api = Api::new("signin", |c| c.web.sign_in_failures = 3).await;
    api.sign_up("alice", "velvet lantern 19").await;
    assert_problem(&api.sign_in("alice", "wrong one").await, StatusCode::UNAUTHORIZED, "wrong_credentials");
    // An unknown user gets the same answer.
    assert_problem(&api.sign_in("nobody", "wrong one").await, StatusCode::UNAUTHORIZED, "wrong_credentials");
    assert_problem(&api.sign_in("alice", "wrong two").await, StatusCode::UNAUTHORIZED, "wrong_credentials");
    // Three failures from this address: even the right password waits now.
    let limited = api.sign_in("alice", "velvet lantern 19").await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(limited.headers[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() > 0);
    // Another address may still sign in as alice (her failures are 2 of 3).
    let elsewhere = Browser { from: Some("127.0.0.2:40000".parse().unwrap()), ..Browser::default() };
    let body = json!({ "username": "alice", "password": "velvet lantern 19" });
    assert_eq!(api.post(&elsewhere, "/api/v1/session", body).await.status, StatusCode::OK);

    // A disabled account cannot sign in, and its sessions end.
    let session = Browser::signed_in(
        &api.post(&elsewhere, "/api/v1/session", json!({ "username": "alice", "password": "velvet lantern 19" })).await,
    );
    api.store.set_disabled("alice", true).await.unwrap();
    assert_problem(&api.get(&session, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let body = json!({ "username": "alice", "password": "velvet lantern 19" });
    assert_problem(&api.post(&elsewhere, "/api/v1/session", body).await, StatusCode::UNAUTHORIZED, "wrong_credentials");
    api.close().await;
}

#[tokio::test]
async fn sign_up_policies_and_limit() {
    let mut closed = Api::new("closed", |c| c.web.signup = Signup::Closed).await;
    assert_eq!(closed.get(&Browser::default(), "/api/v1/signup").await.json["mode"], "closed");
    assert_problem(&closed.sign_up("alice", "velvet lantern 19").await, StatusCode::FORBIDDEN, "signup_closed");
    assert!(closed.store.account_by_username("alice").await.unwrap().is_none());
    closed.close().await;

    let mut invite = Api::new("invite", |c| c.web.signup = Signup::Invite).await;
    assert_problem(&invite.sign_up("alice", "velvet lantern 19").await, StatusCode::FORBIDDEN, "invitation_required");
    let admin = invite.admin().await;
    let made = invite.post(&admin, "/api/v1/invitations", json!({ "email": "alice@example.com" })).await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let code = made.json["code"].as_str().unwrap().to_owned();
    assert!(made.json["link"].as_str().unwrap().contains(&format!("#/signup?invitation={code}")));
    let body = |user: &str, code: &str| json!({ "username": user, "password": "a fine secret 42", "invitation": code });
    let wrong = invite.post(&Browser::default(), "/api/v1/signup", body("alice", "not-a-code")).await;
    assert_problem(&wrong, StatusCode::FORBIDDEN, "invalid_invitation");
    let ok = invite.post(&Browser::default(), "/api/v1/signup", body("alice", &code)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{ok:?}");
    let reused = invite.post(&Browser::default(), "/api/v1/signup", body("bob", &code)).await;
    assert_problem(&reused, StatusCode::FORBIDDEN, "invalid_invitation");
    let listed = invite.get(&admin, "/api/v1/invitations").await;
    assert_eq!(listed.json["items"][0]["used_by"], ok.json["account"]["id"]);
    invite.close().await;

    let mut open = Api::new("limit", |c| c.web.signups_per_hour = 2).await;
    assert_eq!(open.sign_up("user1", "a fine secret 42").await.status, StatusCode::CREATED);
    assert_eq!(open.sign_up("user2", "a fine secret 42").await.status, StatusCode::CREATED);
    assert_problem(&open.sign_up("user3", "a fine secret 42").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let other = Browser { from: Some("127.0.0.3:1234".parse().unwrap()), ..Browser::default() };
    let body = json!({ "username": "user3", "password": "a fine secret 42" });
    assert_eq!(open.post(&other, "/api/v1/signup", body).await.status, StatusCode::CREATED);
    open.close().await;
}

#[tokio::test]
async fn csrf_and_expired_sessions() {
    let mut api = Api::new("csrf", |_| {}).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let name = json!({ "name": "script" });
    let without = Browser { csrf: None, ..alice.clone() };
    assert_problem(&api.post(&without, "/api/v1/me/tokens", name.clone()).await, StatusCode::FORBIDDEN, "csrf");
    let forged = Browser { csrf: Some("guessed".into()), ..alice.clone() };
    assert_problem(&api.post(&forged, "/api/v1/me/tokens", name.clone()).await, StatusCode::FORBIDDEN, "csrf");
    let cross = Browser { origin: Some("https://evil.example"), ..alice.clone() };
    assert_problem(&api.post(&cross, "/api/v1/me/tokens", name.clone()).await, StatusCode::FORBIDDEN, "csrf");
    let body = json!({ "username": "alice", "password": "velvet lantern 19" });
    let cross_sign_in = Browser { origin: Some("https://evil.example"), ..Browser::default() };
    assert_problem(&api.post(&cross_sign_in, "/api/v1/session", body).await, StatusCode::FORBIDDEN, "csrf");
    // Reading needs no token; writing with it works.
    assert_eq!(api.get(&without, "/api/v1/me/tokens").await.status, StatusCode::OK);
    let same = Browser { origin: Some("https://127.0.0.1:7443"), ..alice.clone() };
    assert_eq!(api.post(&same, "/api/v1/me/tokens", name).await.status, StatusCode::CREATED);

    // A session past its expiry is refused.
    let id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    let now = sambung_server::web::unix_now();
    let old = NewWebSession {
        secret_hash: sambung_server::web::auth::hash_secret("old-secret"),
        account_id: id,
        csrf_token: "old-csrf".into(),
        now: now - 100,
        expires_at: now - 1,
        user_agent: None,
        source: None,
    };
    api.store.create_web_session(&old).await.unwrap();
    let expired = Browser { cookie: Some("__Host-sambung-session=old-secret".into()), ..Browser::default() };
    let answer = api.get(&expired, "/api/v1/me").await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(answer.json["detail"].as_str().unwrap().contains("expired"));
    api.close().await;
}

#[tokio::test]
async fn tokens_and_passwords() {
    let mut api = Api::new("tokens", |_| {}).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let mut secrets = Vec::new();
    for i in 0..3 {
        let made = api
            .post(&alice, "/api/v1/me/tokens", json!({ "name": format!("script {i}"), "expires_in_days": 30 }))
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
        let secret = made.json["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("sbg_") && secret.starts_with(made.json["token"]["prefix"].as_str().unwrap()));
        secrets.push((made.json["token"]["id"].as_i64().unwrap(), secret));
    }
    let refused = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "" })).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    let refused = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "x", "expires_in_days": 0 })).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");

    // Pages of two, newest first.
    let first = api.get(&alice, "/api/v1/me/tokens?limit=2").await;
    assert_eq!(first.json["items"].as_array().unwrap().len(), 2);
    assert_eq!(first.json["items"][0]["name"], "script 2");
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let second = api.get(&alice, &format!("/api/v1/me/tokens?limit=2&cursor={cursor}")).await;
    assert_eq!(second.json["items"].as_array().unwrap().len(), 1);
    assert!(second.json["next_cursor"].is_null());
    assert_problem(&api.get(&alice, "/api/v1/me/tokens?limit=0").await, StatusCode::BAD_REQUEST, "invalid_query");
    assert_problem(&api.get(&alice, "/api/v1/me/tokens?cursor=x").await, StatusCode::BAD_REQUEST, "invalid_query");

    // A token works without cookie or CSRF token, until revoked.
    let script = Browser::token(&secrets[0].1);
    assert_eq!(api.get(&script, "/api/v1/me").await.json["username"], "alice");
    let made = api.post(&script, "/api/v1/me/tokens", json!({ "name": "by script" })).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let revoke = api.send(&alice, Method::DELETE, &format!("/api/v1/me/tokens/{}", secrets[0].0), None).await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_problem(&api.get(&script, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    let again = api.send(&alice, Method::DELETE, &format!("/api/v1/me/tokens/{}", secrets[0].0), None).await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not_found");
    // Another account cannot revoke alice's tokens.
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let theirs = api.send(&bob, Method::DELETE, &format!("/api/v1/me/tokens/{}", secrets[1].0), None).await;
    assert_problem(&theirs, StatusCode::NOT_FOUND, "not_found");

    // Password change: the current password is needed, other sessions end, this one stays.
    let other = Browser::signed_in(&api.sign_in("alice", "velvet lantern 19").await);
    let put = |current: &str, new: &str| json!({ "current_password": current, "new_password": new });
    let wrong = api.send(&alice, Method::PUT, "/api/v1/me/password", Some(put("not it", "a new fine secret"))).await;
    assert_problem(&wrong, StatusCode::FORBIDDEN, "wrong_credentials");
    let weak = api.send(&alice, Method::PUT, "/api/v1/me/password", Some(put("velvet lantern 19", "12345678"))).await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    let ok =
        api.send(&alice, Method::PUT, "/api/v1/me/password", Some(put("velvet lantern 19", "a new fine secret"))).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{ok:?}");
    assert_eq!(api.get(&alice, "/api/v1/me").await.status, StatusCode::OK);
    assert_problem(&api.get(&other, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_problem(&api.sign_in("alice", "velvet lantern 19").await, StatusCode::UNAUTHORIZED, "wrong_credentials");
    assert_eq!(api.sign_in("alice", "a new fine secret").await.status, StatusCode::OK);
    let stored = api.store.account_by_username("alice").await.unwrap().unwrap();
    let ha1 =
        sambung_sip::digest::ha1(sambung_sip::digest::Algorithm::Md5, "alice", "example.com", "a new fine secret");
    assert_eq!(stored.ha1_md5, ha1, "phones use the new password too");
    api.close().await;
}

#[tokio::test]
async fn administration_and_directory() {
    let mut api = Api::new("admin", |_| {}).await;
    let admin = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    assert_problem(&api.get(&alice, "/api/v1/users").await, StatusCode::FORBIDDEN, "not_admin");
    assert_problem(&api.post(&alice, "/api/v1/invitations", json!({})).await, StatusCode::FORBIDDEN, "not_admin");
    let body = json!({ "username": "carol", "password": "amber meadow 73", "display_name": "Carol Danvers", "extension": "203" });
    let made = api.post(&admin, "/api/v1/users", body.clone()).await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.json["extension"], "203");
    assert_problem(&api.post(&admin, "/api/v1/users", body).await, StatusCode::CONFLICT, "user_exists");
    let taken = json!({ "username": "dave", "password": "amber meadow 73", "extension": "203" });
    assert_problem(&api.post(&admin, "/api/v1/users", taken).await, StatusCode::CONFLICT, "extension_taken");
    for i in 0..4 {
        let body = json!({ "username": format!("user{i}"), "password": "a fine secret 42" });
        assert_eq!(api.post(&admin, "/api/v1/users", body).await.status, StatusCode::CREATED);
    }
    // Every account, three at a time.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=3&cursor={c}"),
            None => "/api/v1/users?limit=3".to_owned(),
        };
        let page = api.get(&admin, &path).await;
        assert_eq!(page.status, StatusCode::OK);
        names.extend(page.json["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(names, ["alice", "carol", "root", "user0", "user1", "user2", "user3"]);

    let found = api.get(&alice, "/api/v1/directory?q=danvers").await;
    assert_eq!(found.json["items"][0]["username"], "carol");
    assert_eq!(found.json["items"][0]["sip_uri"], "sip:carol@example.com");
    assert!(found.json["items"][0].get("email").is_none(), "no private fields in the directory");
    assert_eq!(api.get(&alice, "/api/v1/directory?q=203").await.json["items"][0]["username"], "carol");
    assert_problem(&api.get(&alice, "/api/v1/directory?q=").await, StatusCode::BAD_REQUEST, "invalid_query");
    assert_problem(&api.get(&alice, "/api/v1/directory").await, StatusCode::BAD_REQUEST, "invalid_query");
    assert_problem(
        &api.get(&Browser::default(), "/api/v1/directory?q=a").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    api.close().await;
}

#[tokio::test]
async fn problems_headers_and_openapi() {
    let mut api = Api::new("problems", |_| {}).await;
    assert_problem(&api.get(&Browser::default(), "/api/v1/nowhere").await, StatusCode::NOT_FOUND, "not_found");
    let request = Request::post("/api/v1/session").header(header::HOST, "h").body(Body::from("{}")).unwrap();
    let answer = api.router.call(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = Request::post("/api/v1/session")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(api.router.call(broken).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let missing = api.post(&Browser::default(), "/api/v1/session", json!({ "username": "x" })).await;
    assert_problem(&missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

    // The app's page, with its security headers.
    let page = api.router.call(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(headers[header::STRICT_TRANSPORT_SECURITY].to_str().unwrap().contains("max-age="));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let body = axum::body::to_bytes(page.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("/app/app.js"));
    for asset in ["/app/app.js", "/app/api.js", "/app/style.css", "/manifest.webmanifest", "/sw.js", "/app/icon.svg"] {
        let answer = api.router.call(Request::get(asset).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{asset}");
    }

    // The OpenAPI document: 3.1, every route with its answers and the problem schema.
    let doc = api.get(&Browser::default(), "/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.json["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc.json["openapi"]);
    assert_eq!(doc.json["servers"][0]["url"], "/api/v1");
    let paths = doc.json["paths"].as_object().unwrap();
    for path in [
        "/session",
        "/signup",
        "/me",
        "/me/password",
        "/me/tokens",
        "/me/tokens/{id}",
        "/me/contacts",
        "/me/contacts/{username}",
        "/events",
        "/me/conversations",
        "/me/conversations/{username}/messages",
        "/me/conversations/{username}/read",
        "/me/conversations/{username}/voice",
        "/clips/{id}",
        "/me/voicemail/{id}/forward",
        "/me/settings",
        "/me/pin",
        "/me/greeting",
        "/me/voicemail",
        "/me/voicemail/{id}",
        "/me/voicemail/{id}/audio",
        "/me/devices",
        "/me/devices/{device}",
        "/webhooks",
        "/webhooks/{id}",
        "/webhooks/{id}/deliveries",
        "/webhooks/{id}/deliveries/{delivery}/replay",
        "/calls",
        "/calls/export",
        "/calls/live/{call}",
        "/calls/live/{call}/transfer",
        "/calls/originate",
        "/me/calls",
        "/directory",
        "/users",
        "/users/{username}",
        "/users/import",
        "/password-reset",
        "/password-reset/complete",
        "/status",
        "/registrations",
        "/calls/live",
        "/invitations",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert!(doc.json["components"]["schemas"]["Problem"].is_object());
    // Every schema a reference names is in the document.
    let text = doc.json.to_string();
    for name in ["ForwardInfo", "LegInfo", "CallRecordInfo", "NewOrigination", "Origination", "NewTransfer"] {
        assert!(doc.json["components"]["schemas"][name].is_object(), "schema {name} missing");
    }
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(doc.json["components"]["schemas"][name].is_object(), "{name} is referenced but missing");
    }
    assert!(doc.json["components"]["securitySchemes"]["session"].is_object());
    assert!(doc.json["components"]["securitySchemes"]["token"].is_object());
    api.close().await;
}

#[tokio::test]
async fn contacts_with_presence() {
    let mut api = Api::new("contacts", |_| {}).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = api.sign_up("bob", "velvet lantern 19").await.json["account"]["id"].as_i64().unwrap();
    api.sign_up("carol", "velvet lantern 19").await;
    let mut notices = api.hub.subscribe();

    let put = |nickname: &str| Some(json!({ "nickname": nickname }));
    let added = api.send(&alice, Method::PUT, "/api/v1/me/contacts/bob", put("Bobby")).await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    assert_eq!(added.json["presence"]["status"], "offline");
    let renamed = api.send(&alice, Method::PUT, "/api/v1/me/contacts/bob", put("Robert")).await;
    assert_eq!((renamed.status, renamed.json["nickname"].as_str()), (StatusCode::OK, Some("Robert")));
    assert_eq!(
        api.send(&alice, Method::PUT, "/api/v1/me/contacts/carol", Some(json!({}))).await.status,
        StatusCode::CREATED
    );
    let missing = api.send(&alice, Method::PUT, "/api/v1/me/contacts/nobody", Some(json!({}))).await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");
    let myself = api.send(&alice, Method::PUT, "/api/v1/me/contacts/alice", Some(json!({}))).await;
    assert_problem(&myself, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    // Each change of the list is announced to the person's live connections.
    assert!(matches!(notices.try_recv(), Ok(sambung_server::presence::Notice::ContactsChanged { .. })));

    // bob's phone registers: his presence in alice's list follows.
    let registered = sambung_pbx::Event::Registered {
        account_id: bob,
        username: "bob".into(),
        device: "bob-desk".into(),
        contact: "sip:bob@127.0.0.1:5070".into(),
        transport: sambung_sip::Transport::Udp,
        source: "127.0.0.1:5070".parse().unwrap(),
        expires_at: 0,
        user_agent: None,
    };
    api.hub.apply(&registered);
    let list = api.get(&alice, "/api/v1/me/contacts").await;
    assert_eq!(list.json["items"][0]["username"], "bob");
    assert_eq!(list.json["items"][0]["nickname"], "Robert");
    assert_eq!(list.json["items"][0]["presence"]["status"], "available");
    assert_eq!(list.json["items"][0]["presence"]["devices"], 1);
    assert_eq!(list.json["items"][1]["presence"]["status"], "offline");
    let page = api.get(&alice, "/api/v1/me/contacts?limit=1").await;
    assert_eq!(page.json["next_cursor"], "bob");

    let gone = api.send(&alice, Method::DELETE, "/api/v1/me/contacts/carol", None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = api.send(&alice, Method::DELETE, "/api/v1/me/contacts/carol", None).await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(api.get(&alice, "/api/v1/me/contacts").await.json["items"].as_array().unwrap().len(), 1);
    api.close().await;
}

#[tokio::test]
async fn chat_both_ways_with_read_marks() {
    let mut api = Api::new("chat", |_| {}).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let bob_id = api.store.account_by_username("bob").await.unwrap().unwrap().id;
    let mut notices = api.hub.subscribe();

    let text = |t: &str| json!({ "text": t });
    let sent = api.post(&alice, "/api/v1/me/conversations/bob/messages", text("hello bob")).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{sent:?}");
    assert_eq!((sent.json["from"].as_str(), sent.json["to"].as_str()), (Some("alice"), Some("bob")));
    let first = sent.json["id"].as_i64().unwrap();
    // Handed to call control for bob's phones.
    match api.core.try_recv() {
        Ok(sambung_server::transport::Event::Deliver { message, from_account }) => {
            assert_eq!((message.id, message.to_account, &message.body[..]), (first, bob_id, &b"hello bob"[..]));
            assert!(message.from_uri.contains("<sip:alice@example.com>"), "{}", message.from_uri);
            assert_ne!(from_account, bob_id);
        }
        other => panic!("expected a delivery, got {other:?}"),
    }
    for refused in ["", "   ", &"x".repeat(1301)] {
        let answer = api.post(&alice, "/api/v1/me/conversations/bob/messages", text(refused)).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    }
    let nobody = api.post(&alice, "/api/v1/me/conversations/nobody/messages", text("hi")).await;
    assert_problem(&nobody, StatusCode::NOT_FOUND, "not_found");

    let reply = api.post(&bob, "/api/v1/me/conversations/alice/messages", text("hi alice")).await;
    let second = reply.json["id"].as_i64().unwrap();
    let list = api.get(&alice, "/api/v1/me/conversations").await;
    assert_eq!(list.json["items"][0]["peer"], "bob");
    assert_eq!(list.json["items"][0]["unread"], 1);
    assert_eq!(list.json["items"][0]["last"]["text"], "hi alice");

    let history = api.get(&alice, "/api/v1/me/conversations/bob/messages?limit=1").await;
    assert_eq!(history.json["items"][0]["id"], second);
    let older = history.json["next_cursor"].as_str().unwrap().to_owned();
    let history = api.get(&alice, &format!("/api/v1/me/conversations/bob/messages?limit=1&cursor={older}")).await;
    assert_eq!(history.json["items"][0]["text"], "hello bob");
    assert_eq!(history.json["items"][0]["read"], false);
    assert!(history.json["next_cursor"].is_null());

    // alice reads: bob sees his message read; alice's unread count is 0
    let read = api.post(&alice, "/api/v1/me/conversations/bob/read", json!({ "up_to": second })).await;
    assert_eq!(read.status, StatusCode::NO_CONTENT, "{read:?}");
    let mut saw_read = false;
    while let Ok(notice) = notices.try_recv() {
        saw_read |= matches!(notice, sambung_server::presence::Notice::Read { up_to, .. } if up_to == second);
    }
    assert!(saw_read);
    assert_eq!(api.get(&alice, "/api/v1/me/conversations").await.json["items"][0]["unread"], 0);
    let bobs = api.get(&bob, "/api/v1/me/conversations/alice/messages").await;
    assert_eq!(bobs.json["items"][0]["read"], true);
    assert_eq!(bobs.json["items"][0]["delivered"], true);
    assert_eq!(bobs.json["items"][1]["read"], false, "bob has not read alice's message");
    // A message of another conversation is refused.
    let carol = Browser::signed_in(&api.sign_up("carol", "velvet lantern 19").await);
    let theirs = api.post(&carol, "/api/v1/me/conversations/bob/read", json!({ "up_to": second })).await;
    assert_problem(&theirs, StatusCode::NOT_FOUND, "not_found");
    // Read in the app: a phone of alice that comes online later is not given it again.
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    assert!(api.store.pending_for(alice_id).await.unwrap().is_empty());
    api.close().await;
}

#[tokio::test]
async fn settings_voicemail_devices_and_calls() {
    let mut api = Api::new("settings", |_| {}).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;

    let settings = api.get(&alice, "/api/v1/me/settings").await;
    assert_eq!((settings.json["voicemail"].as_bool(), settings.json["dnd"].as_bool()), (Some(true), Some(false)));
    let mut wanted = settings.json.clone();
    wanted["forward_busy"] = json!("bob");
    wanted["dnd"] = json!(true);
    wanted["no_answer_secs"] = json!(25);
    let put = api.send(&alice, Method::PUT, "/api/v1/me/settings", Some(wanted.clone())).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let stored = api.store.call_settings(alice_id).await.unwrap();
    assert_eq!((stored.forward_busy.as_deref(), stored.dnd, stored.no_answer_secs), (Some("bob"), true, 25));
    for (field, value) in
        [("forward_always", "nobody"), ("forward_busy", "alice"), ("forward_offline", "sips:x@192.0.2.1")]
    {
        let mut bad = wanted.clone();
        bad[field] = json!(value);
        let refused = api.send(&alice, Method::PUT, "/api/v1/me/settings", Some(bad)).await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_target");
    }
    let mut bad = wanted.clone();
    bad["no_answer_secs"] = json!(1);
    assert_problem(
        &api.send(&alice, Method::PUT, "/api/v1/me/settings", Some(bad)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
    );
    assert_eq!(api.store.call_settings(alice_id).await.unwrap(), stored, "a refusal changes nothing");

    assert_eq!(
        api.send(&alice, Method::PUT, "/api/v1/me/pin", Some(json!({ "pin": "2468" }))).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(api.store.verify_voicemail_pin(alice_id, "2468").await.unwrap());
    let weak = api.send(&alice, Method::PUT, "/api/v1/me/pin", Some(json!({ "pin": "12a" }))).await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "invalid_pin");

    // The mailbox: listed newest first, played, saved, deleted; others' messages are not ours.
    let mut ids = Vec::new();
    for n in 0..2 {
        let message = sambung_store::NewVoicemail {
            account_id: alice_id,
            caller_uri: "sip:bob@example.com".into(),
            caller_name: "Bob".into(),
            caller_number: Some("bob".into()),
            created_at: 100 + n,
            duration_ms: 1500,
            audio: b"RIFF-fake-wav".to_vec(),
        };
        ids.push(api.store.store_voicemail(message).await.unwrap().id);
    }
    let list = api.get(&alice, "/api/v1/me/voicemail").await;
    assert_eq!(list.json["items"][0]["id"], ids[1]);
    assert_eq!(list.json["items"][0]["state"], "new");
    let audio = api
        .router
        .call({
            let mut r = Request::get(format!("/api/v1/me/voicemail/{}/audio", ids[0])).body(Body::empty()).unwrap();
            r.headers_mut().insert(header::COOKIE, alice.cookie.clone().unwrap().parse().unwrap());
            r
        })
        .await
        .unwrap();
    assert_eq!(audio.status(), StatusCode::OK);
    assert_eq!(audio.headers()[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(&axum::body::to_bytes(audio.into_body(), 1 << 20).await.unwrap()[..], b"RIFF-fake-wav");
    let theirs = api.get(&bob, &format!("/api/v1/me/voicemail/{}/audio", ids[0])).await;
    assert_problem(&theirs, StatusCode::NOT_FOUND, "not_found");
    let saved = api
        .send(&alice, Method::PATCH, &format!("/api/v1/me/voicemail/{}", ids[0]), Some(json!({ "state": "saved" })))
        .await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT);
    assert_eq!(api.store.voicemail_counts(alice_id).await.unwrap(), (1, 1));
    // The lamps: call control is told the new counts.
    match api.core.try_recv() {
        Ok(sambung_server::transport::Event::Mailbox { account_id, counts }) => {
            assert_eq!((account_id, counts.new, counts.saved), (alice_id, 1, 1));
        }
        other => panic!("expected the mailbox counts, got {other:?}"),
    }
    let bad = api
        .send(&alice, Method::PATCH, &format!("/api/v1/me/voicemail/{}", ids[0]), Some(json!({ "state": "old" })))
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    assert_eq!(
        api.send(&alice, Method::DELETE, &format!("/api/v1/me/voicemail/{}", ids[1]), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get(&alice, "/api/v1/me/voicemail").await.json["items"].as_array().unwrap().len(), 1);

    // Devices and call history.
    let binding = sambung_store::Binding {
        account_id: alice_id,
        aor: "sip:alice@example.com".into(),
        contact: "sip:alice@192.0.2.7:5060".into(),
        instance: None,
        reg_id: None,
        q: 1000,
        expires_at: sambung_server::web::unix_now() + 300,
        call_id: "reg-1".into(),
        cseq: 1,
        received: "192.0.2.7:5060".into(),
        path: None,
        user_agent: Some("Desk phone".into()),
        updated_at: 0,
    };
    api.store.upsert_binding(&binding).await.unwrap();
    let devices = api.get(&alice, "/api/v1/me/devices").await;
    assert_eq!(devices.json["items"][0]["user_agent"], "Desk phone");
    // Signing it out hands its key to call control; someone else's device or an unknown one is
    // not found.
    let key = devices.json["items"][0]["device"].as_str().unwrap().to_owned();
    assert_eq!(key, "sip:alice@192.0.2.7:5060");
    let path = format!("/api/v1/me/devices/{}", key.replace(':', "%3A").replace('@', "%40"));
    assert_problem(&api.send(&bob, Method::DELETE, &path, None).await, StatusCode::NOT_FOUND, "not_found");
    assert_problem(
        &api.send(&alice, Method::DELETE, "/api/v1/me/devices/sip%3Aalice%40192.0.2.8", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    while api.core.try_recv().is_ok() {}
    assert_eq!(api.send(&alice, Method::DELETE, &path, None).await.status, StatusCode::NO_CONTENT);
    match api.core.try_recv() {
        Ok(sambung_server::transport::Event::Unregister { account_id, device }) => {
            assert_eq!((account_id, &device[..]), (alice_id, "sip:alice@192.0.2.7:5060"));
        }
        other => panic!("expected a sign-out, got {other:?}"),
    }
    for (n, (caller, callee)) in [("alice", "bob"), ("bob", "alice"), ("bob", "carol")].into_iter().enumerate() {
        let cdr = sambung_store::NewCdr {
            call_id: format!("c{n}"),
            caller: caller.into(),
            callee: callee.into(),
            caller_device: None,
            callee_device: None,
            started_at: 10 + n as i64,
            answered_at: Some(11 + n as i64),
            ended_at: 20 + n as i64,
            cause_code: 200,
            cause_reason: "OK".into(),
            hangup_side: sambung_store::HangupSide::Caller,
            answered_by: None,
            forwards: Vec::new(),
        };
        api.store.insert_cdr(&cdr).await.unwrap();
    }
    let calls = api.get(&alice, "/api/v1/me/calls?limit=1").await;
    assert_eq!(
        (calls.json["items"][0]["direction"].as_str(), calls.json["items"][0]["other"].as_str()),
        (Some("incoming"), Some("bob"))
    );
    let cursor = calls.json["next_cursor"].as_str().unwrap().to_owned();
    let older = api.get(&alice, &format!("/api/v1/me/calls?limit=5&cursor={cursor}")).await;
    assert_eq!(older.json["items"].as_array().unwrap().len(), 1, "bob's call to carol is not alice's");
    assert_eq!(older.json["items"][0]["direction"], "outgoing");
    api.close().await;
}

/// Sends `audio` as a voice message from `who` with the given content type.
async fn send_voice(api: &mut Api, who: &Browser, to: &str, content_type: &str, audio: &[u8]) -> Answer {
    let mut request = Request::post(format!("/api/v1/me/conversations/{to}/voice?duration_ms=2300"))
        .header(header::HOST, "127.0.0.1:7443")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::COOKIE, who.cookie.clone().unwrap())
        .header("X-CSRF-Token", who.csrf.clone().unwrap())
        .body(Body::from(audio.to_vec()))
        .unwrap();
    request.extensions_mut().insert(ClientAddr("127.0.0.1:50000".parse().unwrap()));
    let response = api.router.call(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer { status, headers, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text: String::new() }
}

#[tokio::test]
async fn voice_messages_by_email() {
    let mut api = Api::new("voice-mail", |c| c.email.server = Some("127.0.0.1".into())).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let mut webm = vec![0x1a, 0x45, 0xdf, 0xa3];
    webm.extend_from_slice(&[7u8; 2000]);
    // Not asked for: no mail.
    assert_eq!(send_voice(&mut api, &alice, "bob", "audio/webm", &webm).await.status, StatusCode::CREATED);
    assert!(api.store.due_mail(i64::MAX, 10).await.unwrap().is_empty());

    let mut settings = api.get(&bob, "/api/v1/me/settings").await.json;
    assert_eq!(settings["voice_messages_email"], false);
    settings["voice_messages_email"] = json!(true);
    settings["voicemail_email"] = json!("bob@mail.example");
    let put = api.send(&bob, Method::PUT, "/api/v1/me/settings", Some(settings)).await;
    assert_eq!((put.status, &put.json["voice_messages_email"]), (StatusCode::OK, &json!(true)), "{put:?}");
    let sent = send_voice(&mut api, &alice, "bob", "audio/webm;codecs=opus", &webm).await;
    let id = sent.json["id"].as_i64().unwrap();
    let mails = api.store.due_mail(i64::MAX, 10).await.unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!((mail.to.as_str(), mail.subject.as_str()), ("bob@mail.example", "Voice message from alice"));
    assert!(mail.body.contains("https://127.0.0.1:7443/#/clip?id="), "{}", mail.body);
    let (file, kind, bytes) = mail.attachment.as_ref().expect("the recording attached");
    assert_eq!(
        (file.as_str(), kind.as_str(), bytes),
        (format!("voice-message-{id}.webm").as_str(), "audio/webm", &webm)
    );
    // Bob's own voice message to alice is not mailed: she did not ask.
    assert_eq!(send_voice(&mut api, &bob, "alice", "audio/webm", &webm).await.status, StatusCode::CREATED);
    assert_eq!(api.store.due_mail(i64::MAX, 10).await.unwrap().len(), 1);
    api.close().await;
}

#[tokio::test]
async fn voice_messages() {
    let mut api = Api::new("voice", |_| {}).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let carol = Browser::signed_in(&api.sign_up("carol", "velvet lantern 19").await);
    let mut webm = vec![0x1a, 0x45, 0xdf, 0xa3];
    webm.extend_from_slice(&[7u8; 2000]);

    let sent = send_voice(&mut api, &alice, "bob", "audio/webm;codecs=opus", &webm).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{sent:?}");
    let clip = sent.json["clip_id"].as_i64().expect("a clip");
    assert!(sent.json["text"].as_str().unwrap().starts_with("Voice message (2 s): https://127.0.0.1:7443/#/clip?id="));
    // The phones get the text with the link.
    match api.core.try_recv() {
        Ok(sambung_server::transport::Event::Deliver { message, .. }) => {
            let text = String::from_utf8_lossy(&message.body).into_owned();
            assert!(text.contains(&format!("#/clip?id={clip}")), "{text}");
        }
        other => panic!("expected a delivery, got {other:?}"),
    }
    let played = api.get(&bob, &format!("/api/v1/clips/{clip}")).await;
    assert_eq!(played.status, StatusCode::OK);
    assert_eq!(played.headers[header::CONTENT_TYPE], "audio/webm");
    assert_eq!(api.get(&alice, &format!("/api/v1/clips/{clip}")).await.status, StatusCode::OK);
    assert_problem(&api.get(&carol, &format!("/api/v1/clips/{clip}")).await, StatusCode::NOT_FOUND, "not_found");
    let history = api.get(&bob, "/api/v1/me/conversations/alice/messages").await;
    assert_eq!(history.json["items"][0]["clip_id"], clip);

    let refused = send_voice(&mut api, &alice, "bob", "audio/webm", b"not a recording").await;
    assert_problem(&refused, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_audio");
    let refused = send_voice(&mut api, &alice, "bob", "text/plain", &webm).await;
    assert_problem(&refused, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_audio");

    // A voicemail forwarded as a voice message.
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
    wav.extend_from_slice(&[0u8; 100]);
    let voicemail = sambung_store::NewVoicemail {
        account_id: alice_id,
        caller_uri: "sip:dave@example.com".into(),
        caller_name: "Dave".into(),
        caller_number: None,
        created_at: 1,
        duration_ms: 4000,
        audio: wav.clone(),
    };
    let id = api.store.store_voicemail(voicemail).await.unwrap().id;
    let forwarded = api.post(&alice, &format!("/api/v1/me/voicemail/{id}/forward"), json!({ "to": "carol" })).await;
    assert_eq!(forwarded.status, StatusCode::CREATED, "{forwarded:?}");
    let clip = forwarded.json["clip_id"].as_i64().unwrap();
    let played = api.get(&carol, &format!("/api/v1/clips/{clip}")).await;
    assert_eq!(
        (played.status, &played.headers[header::CONTENT_TYPE]),
        (StatusCode::OK, &"audio/wav".parse::<axum::http::HeaderValue>().unwrap())
    );
    let theirs = api.post(&bob, &format!("/api/v1/me/voicemail/{id}/forward"), json!({ "to": "carol" })).await;
    assert_problem(&theirs, StatusCode::NOT_FOUND, "not_found");
    api.close().await;
}

#[tokio::test]
async fn administrators_change_and_import_accounts() {
    let mut api = Api::new("import", |_| {}).await;
    let admin = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);

    // Disable: alice's session ends and she cannot sign in; enable again; reset her password.
    let patch = |body: Value| Some(body);
    let off = api.send(&admin, Method::PATCH, "/api/v1/users/alice", patch(json!({ "disabled": true }))).await;
    assert_eq!((off.status, off.json["disabled"].as_bool()), (StatusCode::OK, Some(true)), "{off:?}");
    assert_problem(&api.get(&alice, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_problem(&api.sign_in("alice", "velvet lantern 19").await, StatusCode::UNAUTHORIZED, "wrong_credentials");
    api.send(&admin, Method::PATCH, "/api/v1/users/alice", patch(json!({ "disabled": false }))).await;
    let reset =
        api.send(&admin, Method::PATCH, "/api/v1/users/alice", patch(json!({ "password": "a brand new one 5" }))).await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(api.sign_in("alice", "a brand new one 5").await.status, StatusCode::OK);
    let weak = api.send(&admin, Method::PATCH, "/api/v1/users/alice", patch(json!({ "password": "alice123" }))).await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    let myself = api.send(&admin, Method::PATCH, "/api/v1/users/root", patch(json!({ "disabled": true }))).await;
    assert_problem(&myself, StatusCode::UNPROCESSABLE_ENTITY, "self_lockout");
    let nobody = api.send(&admin, Method::PATCH, "/api/v1/users/nobody", patch(json!({ "disabled": true }))).await;
    assert_problem(&nobody, StatusCode::NOT_FOUND, "not_found");
    let by_user = Browser::signed_in(&api.sign_in("alice", "a brand new one 5").await);
    let refused = api.send(&by_user, Method::PATCH, "/api/v1/users/root", patch(json!({ "disabled": true }))).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "not_admin");

    // Import: all or nothing.
    let import = |api: &mut Api, csv: &str| {
        let mut request = Request::post("/api/v1/users/import")
            .header(header::HOST, "127.0.0.1:7443")
            .header(header::CONTENT_TYPE, "text/csv")
            .header(header::COOKIE, admin.cookie.clone().unwrap())
            .header("X-CSRF-Token", admin.csrf.clone().unwrap())
            .body(Body::from(csv.to_owned()))
            .unwrap();
        request.extensions_mut().insert(ClientAddr("127.0.0.1:50000".parse().unwrap()));
        api.router.call(request)
    };
    let bad = import(
        &mut api,
        "username,password,extension\ncarol,sunny-hill-41,301\ndave,short,302\nalice,x-y-z-w-1234,303\n",
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let detail =
        serde_json::from_slice::<Value>(&axum::body::to_bytes(bad.into_body(), 1 << 20).await.unwrap()).unwrap();
    let detail = detail["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("row 2 (dave)") && detail.contains("row 3 (alice)") && !detail.contains("carol"),
        "{detail}"
    );
    assert!(api.store.account_by_username("carol").await.unwrap().is_none(), "nothing imported");
    let good =
        import(&mut api, "username,password,extension,admin\ncarol,sunny-hill-41,301,no\ndave,rocky-road-52,302,yes\n")
            .await
            .unwrap();
    assert_eq!(good.status(), StatusCode::CREATED);
    let dave = api.store.account_by_username("dave").await.unwrap().unwrap();
    assert_eq!((dave.extension.as_deref(), dave.admin), (Some("302"), true));
    assert_eq!(api.sign_in("carol", "sunny-hill-41").await.status, StatusCode::OK);
    api.close().await;
}

#[tokio::test]
async fn password_reset_by_email() {
    let mut off = Api::new("reset-off", |_| {}).await;
    let ask = json!({ "who": "alice" });
    assert_problem(
        &off.post(&Browser::default(), "/api/v1/password-reset", ask.clone()).await,
        StatusCode::NOT_IMPLEMENTED,
        "email_disabled",
    );
    off.close().await;

    let mut api = Api::new("reset", |c| c.email.server = Some("127.0.0.1".into())).await;
    let body = json!({ "username": "alice", "password": "velvet lantern 19", "email": "alice@example.com" });
    let alice = Browser::signed_in(&api.post(&Browser::default(), "/api/v1/signup", body).await);
    // Unknown people get the same answer, and no mail.
    for who in ["nobody", "nobody@example.com"] {
        let answer = api.post(&Browser::default(), "/api/v1/password-reset", json!({ "who": who })).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    assert!(api.store.due_mail(i64::MAX, 10).await.unwrap().is_empty());
    let answer = api.post(&Browser::default(), "/api/v1/password-reset", json!({ "who": "ALICE@example.com" })).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let mails = api.store.due_mail(i64::MAX, 10).await.unwrap();
    assert_eq!((mails.len(), mails[0].to.as_str()), (1, "alice@example.com"));
    let link = mails[0].body.lines().find(|l| l.starts_with("https://")).expect("a link").to_owned();
    assert!(link.starts_with("https://127.0.0.1:7443/#/reset?code="), "{link}");
    let code = link.rsplit("code=").next().unwrap().to_owned();

    let done = |code: &str, password: &str| json!({ "code": code, "new_password": password });
    let weak = api.post(&Browser::default(), "/api/v1/password-reset/complete", done(&code, "12345678")).await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    let wrong =
        api.post(&Browser::default(), "/api/v1/password-reset/complete", done("guess", "a new fine secret")).await;
    assert_problem(&wrong, StatusCode::FORBIDDEN, "invalid_reset");
    let ok = api.post(&Browser::default(), "/api/v1/password-reset/complete", done(&code, "a new fine secret")).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{ok:?}");
    assert_problem(&api.get(&alice, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(api.sign_in("alice", "a new fine secret").await.status, StatusCode::OK);
    let again = api.post(&Browser::default(), "/api/v1/password-reset/complete", done(&code, "yet another 77")).await;
    assert_problem(&again, StatusCode::FORBIDDEN, "invalid_reset");
    // Asking again and again is limited.
    let mut last = StatusCode::ACCEPTED;
    for _ in 0..6 {
        last = api.post(&Browser::default(), "/api/v1/password-reset", json!({ "who": "alice" })).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    api.close().await;
}

#[tokio::test]
async fn server_status_registrations_and_live_calls() {
    let mut api = Api::new("status", |_| {}).await;
    let admin = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = api.sign_up("bob", "velvet lantern 19").await.json["account"]["id"].as_i64().unwrap();
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    assert_problem(&api.get(&alice, "/api/v1/status").await, StatusCode::FORBIDDEN, "not_admin");

    let binding = sambung_store::Binding {
        account_id: alice_id,
        aor: "sip:alice@example.com".into(),
        contact: "sip:alice@192.0.2.7:5060".into(),
        instance: None,
        reg_id: None,
        q: 1000,
        expires_at: sambung_server::web::unix_now() + 300,
        call_id: "reg-1".into(),
        cseq: 1,
        received: "192.0.2.7:5060".into(),
        path: None,
        user_agent: Some("Desk phone".into()),
        updated_at: 0,
    };
    api.store.upsert_binding(&binding).await.unwrap();
    api.hub.apply(&sambung_pbx::Event::CallStarted {
        call: 5,
        call_id: "c5".into(),
        caller: "alice".into(),
        callee: "bob".into(),
        caller_id: alice_id,
        callee_id: bob,
        at: 0,
    });
    api.hub.apply(&sambung_pbx::Event::CallAnswered { call: 5, by: "sip:bob@x".into(), account_id: Some(bob), at: 1 });

    let status = api.get(&admin, "/api/v1/status").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!((status.json["accounts"].as_u64(), status.json["registrations"].as_u64()), (Some(3), Some(1)));
    assert_eq!(
        (status.json["calls_in_progress"].as_u64(), status.json["database"].as_str()),
        (Some(1), Some("sqlite"))
    );
    let registrations = api.get(&admin, "/api/v1/registrations").await;
    assert_eq!(registrations.json["items"][0]["username"], "alice");
    assert_eq!(registrations.json["items"][0]["user_agent"], "Desk phone");
    let calls = api.get(&admin, "/api/v1/calls/live").await;
    let parties = &calls.json["items"][0]["parties"];
    assert_eq!((parties[0]["username"].as_str(), parties[0]["role"].as_str()), (Some("alice"), Some("caller")));
    assert_eq!((parties[1]["username"].as_str(), parties[1]["answered"].as_bool()), (Some("bob"), Some(true)));
    api.close().await;
}

/// A mono 16-bit PCM WAV file of `seconds` of a quiet tone at `rate`.
fn wav(seconds: f32, rate: u32) -> Vec<u8> {
    let samples = (seconds * rate as f32) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(samples * 2).to_le_bytes());
    for n in 0..samples {
        let v = ((n as f32 * 0.05).sin() * 3000.0) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[tokio::test]
async fn greeting_upload() {
    let mut api = Api::new("greeting", |c| c.voicemail.max_greeting_seconds = 5).await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    assert_problem(&api.get(&alice, "/api/v1/me/greeting").await, StatusCode::NOT_FOUND, "not_found");
    let put = |body: Vec<u8>| {
        let mut request = Request::put("/api/v1/me/greeting")
            .header(header::HOST, "127.0.0.1:7443")
            .header(header::CONTENT_TYPE, "audio/wav")
            .header(header::COOKIE, alice.cookie.clone().unwrap())
            .header("X-CSRF-Token", alice.csrf.clone().unwrap())
            .body(Body::from(body))
            .unwrap();
        request.extensions_mut().insert(ClientAddr("127.0.0.1:50000".parse().unwrap()));
        request
    };
    let status = |r: axum::response::Response| r.status();
    assert_eq!(status(api.router.call(put(wav(2.0, 48_000))).await.unwrap()), StatusCode::NO_CONTENT);
    assert_eq!(api.store.greeting(alice_id).await.unwrap().unwrap(), wav(2.0, 48_000));
    assert_eq!(
        status(api.router.call(put(wav(6.0, 8_000))).await.unwrap()),
        StatusCode::UNPROCESSABLE_ENTITY,
        "too long"
    );
    assert_eq!(status(api.router.call(put(b"not a wav".to_vec())).await.unwrap()), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(api.store.greeting(alice_id).await.unwrap().unwrap(), wav(2.0, 48_000), "a refusal keeps the old one");
    assert_eq!(api.get(&alice, "/api/v1/me/greeting").await.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(api.send(&alice, Method::DELETE, "/api/v1/me/greeting", None).await.status, StatusCode::NO_CONTENT);
    assert!(api.store.greeting(alice_id).await.unwrap().is_none());
    api.close().await;
}

#[tokio::test]
async fn call_records_and_scoped_tokens() {
    let mut api = Api::new("records", |c| c.web.token_requests_per_minute = 6).await;
    let root = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    for (n, (caller, callee, answered, code)) in
        [("alice", "bob", true, 200), ("bob", "carol", false, 486), ("alice", "bob", false, 487)]
            .into_iter()
            .enumerate()
    {
        let n = n as i64;
        let cdr = sambung_store::NewCdr {
            call_id: format!("c{n}"),
            caller: caller.into(),
            callee: callee.into(),
            caller_device: None,
            callee_device: None,
            started_at: 1_000 + n * 100,
            answered_at: answered.then_some(1_001 + n * 100),
            ended_at: 1_050 + n * 100,
            cause_code: code,
            cause_reason: if answered { "BYE".into() } else { "=cmd|' /C calc'!A0".into() },
            hangup_side: sambung_store::HangupSide::Caller,
            // c0 was forwarded from bob (no answer) to carol, whose voicemail took it.
            answered_by: answered.then(|| "voicemail".to_owned()),
            forwards: if answered {
                vec![sambung_store::Forward { to: "carol".into(), reason: "no-answer".into() }]
            } else {
                Vec::new()
            },
        };
        let written = api.store.insert_cdr(&cdr).await.unwrap();
        if n == 0 {
            let leg = |side: &str, packets, lost, jitter_us| sambung_store::CdrLeg {
                cdr_id: written.id,
                side: side.into(),
                packets,
                lost,
                jitter_us,
                payload_type: Some(0),
                rtt_us: None,
            };
            api.store.insert_cdr_legs(&[leg("caller", 99, 1, 4_500), leg("callee", 150, 0, 800)]).await.unwrap();
        }
    }
    // alice sees her own calls only; another user's are refused.
    let mine = api.get(&alice, "/api/v1/calls").await;
    let ids: Vec<&str> =
        mine.json["items"].as_array().unwrap().iter().map(|c| c["call_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c2", "c0"]);
    assert_eq!(
        (mine.json["items"][0]["result"].as_str(), mine.json["items"][1]["result"].as_str()),
        (Some("cancelled"), Some("answered"))
    );
    assert_problem(&api.get(&alice, "/api/v1/calls?user=bob").await, StatusCode::FORBIDDEN, "not_admin");
    // an administrator filters everyone's, and pages
    let busy = api.get(&root, "/api/v1/calls?result=busy").await;
    assert_eq!(busy.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(busy.json["items"][0]["caller"], "bob");
    let window = api.get(&root, "/api/v1/calls?from=1100&to=1200").await;
    assert_eq!(window.json["items"][0]["call_id"], "c1");
    let first = api.get(&root, "/api/v1/calls?limit=2").await;
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let rest = api.get(&root, &format!("/api/v1/calls?limit=2&cursor={cursor}")).await;
    assert_eq!((rest.json["items"][0]["call_id"].as_str(), &rest.json["next_cursor"]), (Some("c0"), &Value::Null));
    assert_problem(&api.get(&root, "/api/v1/calls?result=lost").await, StatusCode::BAD_REQUEST, "invalid_query");
    assert_problem(&api.get(&root, "/api/v1/calls?from=5&to=5").await, StatusCode::BAD_REQUEST, "invalid_query");
    // exports
    let csv = api.get(&root, "/api/v1/calls/export").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{}", csv.text);
    assert!(lines[0].starts_with("id,call_id,caller,callee,"));
    assert!(lines[0].ends_with(",caller_packets,caller_loss_percent,caller_jitter_ms,caller_rtt_ms,caller_mos,callee_packets,callee_loss_percent,callee_jitter_ms,callee_rtt_ms,callee_mos"), "{}", lines[0]);
    assert!(
        lines[3].contains(",1970-01-01T00:16:40Z,1970-01-01T00:16:41Z,")
            && lines[3].contains(",answered,200,BYE,caller,voicemail,no-answer carol,"),
        "{}",
        lines[3]
    );
    // c0's media figures: the caller's audio lost 1 packet in 100, the callee's none.
    assert!(lines[3].ends_with(",99,1,4.5,,4.31,150,0,0.8,,4.4"), "{}", lines[3]);
    assert!(lines[1].contains(",cancelled,487,'=cmd|' /C calc'!A0,"), "a formula is defused: {}", lines[1]);
    let json = api.get(&alice, "/api/v1/calls/export?format=json&result=answered").await;
    assert_eq!(json.json.as_array().unwrap().len(), 1);
    assert_eq!(json.json[0]["duration_secs"], 49);
    assert_eq!(json.json[0]["answered_by"], "voicemail");
    assert_eq!(json.json[0]["forwards"], json!([{ "to": "carol", "reason": "no-answer" }]));
    let legs = &json.json[0]["legs"];
    assert_eq!(
        (legs[0]["side"].as_str(), legs[0]["packets"].as_i64(), legs[0]["loss_percent"].as_f64()),
        (Some("caller"), Some(99), Some(1.0))
    );
    assert_eq!(
        (legs[0]["jitter_ms"].as_f64(), legs[0]["mos"].as_f64(), &legs[0]["rtt_ms"]),
        (Some(4.5), Some(4.31), &Value::Null)
    );
    assert_eq!((legs[1]["side"].as_str(), legs[1]["mos"].as_f64()), (Some("callee"), Some(4.4)));
    assert_problem(&api.get(&root, "/api/v1/calls/export?format=xml").await, StatusCode::BAD_REQUEST, "invalid_query");

    // A token for software reads call records and nothing else.
    let made = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "crm", "scopes": ["calls:read"] })).await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.json["token"]["scopes"], json!(["calls:read"]));
    let crm = Browser::token(made.json["secret"].as_str().unwrap());
    assert_eq!(api.get(&crm, "/api/v1/calls").await.status, StatusCode::OK);
    assert_eq!(api.get(&crm, "/api/v1/me").await.json["username"], "alice");
    assert_problem(&api.get(&crm, "/api/v1/me/contacts").await, StatusCode::FORBIDDEN, "scope");
    assert_problem(&api.get(&crm, "/api/v1/webhooks").await, StatusCode::FORBIDDEN, "scope");
    assert_problem(
        &api.post(&crm, "/api/v1/me/tokens", json!({ "name": "more" })).await,
        StatusCode::FORBIDDEN,
        "scope",
    );
    // ... within its rate: 6 requests a minute here.
    assert_eq!(api.get(&crm, "/api/v1/calls").await.status, StatusCode::OK);
    let limited = api.get(&crm, "/api/v1/calls").await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    let refused = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "x", "scopes": ["users:manage"] })).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "not_admin");
    let unknown = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "x", "scopes": ["everything"] })).await;
    assert_problem(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    let empty = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "x", "scopes": [] })).await;
    assert_problem(&empty, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    api.close().await;
}

#[tokio::test]
async fn a_call_in_progress_is_ended_by_a_party_or_an_administrator() {
    let mut api = Api::new("end-call", |_| {}).await;
    let root = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let carol = Browser::signed_in(&api.sign_up("carol", "velvet lantern 19").await);
    let id = |name: &str| {
        let store = api.store.clone();
        let name = name.to_owned();
        async move { store.account_by_username(&name).await.unwrap().unwrap().id }
    };
    let (alice_id, bob_id) = (id("alice").await, id("bob").await);
    api.hub.apply(&sambung_pbx::Event::CallStarted {
        call: 42,
        call_id: "c42".into(),
        caller: "alice".into(),
        callee: "bob".into(),
        caller_id: alice_id,
        callee_id: bob_id,
        at: 1,
    });
    api.hub.apply(&sambung_pbx::Event::CallRinging { call: 42, target: "bob".into(), target_id: bob_id });
    while api.core.try_recv().is_ok() {}
    assert_problem(
        &api.send(&carol, Method::DELETE, "/api/v1/calls/live/42", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &api.send(&root, Method::DELETE, "/api/v1/calls/live/43", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    for who in [&bob, &root] {
        assert_eq!(api.send(who, Method::DELETE, "/api/v1/calls/live/42", None).await.status, StatusCode::ACCEPTED);
        assert!(matches!(api.core.try_recv(), Ok(sambung_server::transport::Event::EndCall { call: 42 })));
    }
    // A token for software needs calls:control for it.
    let made = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "crm", "scopes": ["calls:read"] })).await;
    let reader = Browser::token(made.json["secret"].as_str().unwrap());
    assert_problem(
        &api.send(&reader, Method::DELETE, "/api/v1/calls/live/42", None).await,
        StatusCode::FORBIDDEN,
        "scope",
    );
    let made = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "crm2", "scopes": ["calls:control"] })).await;
    let control = Browser::token(made.json["secret"].as_str().unwrap());
    assert_eq!(api.send(&control, Method::DELETE, "/api/v1/calls/live/42", None).await.status, StatusCode::ACCEPTED);
    api.close().await;
}

#[tokio::test]
async fn click_to_call_rings_ones_own_devices_or_an_administrators_choice() {
    let mut api = Api::new("originate", |_| {}).await;
    let root = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    api.sign_up("bob", "velvet lantern 19").await;
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    while api.core.try_recv().is_ok() {}
    let originate = |from: Option<&str>, to: &str| match from {
        Some(from) => json!({ "from": from, "to": to }),
        None => json!({ "to": to }),
    };
    // No device of alice's: nothing to ring.
    let none = api.post(&alice, "/api/v1/calls/originate", originate(None, "bob")).await;
    assert_problem(&none, StatusCode::CONFLICT, "no_device");
    let binding = sambung_store::Binding {
        account_id: alice_id,
        aor: "sip:alice@example.com".into(),
        contact: "sip:alice@192.0.2.7:5060".into(),
        instance: None,
        reg_id: None,
        q: 1000,
        expires_at: sambung_server::web::unix_now() + 300,
        call_id: "reg-1".into(),
        cseq: 1,
        received: "192.0.2.7:5060".into(),
        path: None,
        user_agent: None,
        updated_at: 0,
    };
    api.store.upsert_binding(&binding).await.unwrap();
    // Targets that cannot be called, and someone else's phone.
    for bad in ["nobody", "alice", "mailto:bob@example.com", ""] {
        let refused = api.post(&alice, "/api/v1/calls/originate", originate(None, bad)).await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_target");
    }
    let refused = api.post(&alice, "/api/v1/calls/originate", originate(Some("bob"), "alice")).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "not_admin");
    assert!(api.core.try_recv().is_err(), "nothing reached call control");
    // Her own devices, by a user; anyone's, by an administrator (by extension too).
    let made = api.post(&alice, "/api/v1/calls/originate", originate(None, "bob")).await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{:?}", made.json);
    assert_eq!((made.json["from"].as_str(), made.json["to"].as_str()), (Some("alice"), Some("bob")));
    let id = made.json["id"].as_u64().unwrap();
    match api.core.try_recv() {
        Ok(sambung_server::transport::Event::Originate { id: sent, account_id, target }) => {
            assert_eq!((sent, account_id, target.as_str()), (id, alice_id, "bob"));
        }
        other => panic!("call control got {other:?}"),
    }
    let made = api.post(&root, "/api/v1/calls/originate", originate(Some("alice"), "sip:carol@192.0.2.9")).await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{:?}", made.json);
    assert_ne!(made.json["id"].as_u64(), Some(id), "each attempt its own number");
    assert!(matches!(api.core.try_recv(), Ok(sambung_server::transport::Event::Originate { .. })));
    // A token needs calls:control.
    let made = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "crm", "scopes": ["calls:read"] })).await;
    let reader = Browser::token(made.json["secret"].as_str().unwrap());
    assert_problem(
        &api.post(&reader, "/api/v1/calls/originate", originate(None, "bob")).await,
        StatusCode::FORBIDDEN,
        "scope",
    );
    api.close().await;
}

#[tokio::test]
async fn a_party_or_an_administrator_transfers_an_answered_call() {
    let mut api = Api::new("transfer", |_| {}).await;
    let root = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "velvet lantern 19").await);
    let carol = Browser::signed_in(&api.sign_up("carol", "velvet lantern 19").await);
    let alice_id = api.store.account_by_username("alice").await.unwrap().unwrap().id;
    let bob_id = api.store.account_by_username("bob").await.unwrap().unwrap().id;
    api.hub.apply(&sambung_pbx::Event::CallStarted {
        call: 42,
        call_id: "c42".into(),
        caller: "alice".into(),
        callee: "bob".into(),
        caller_id: alice_id,
        callee_id: bob_id,
        at: 1,
    });
    api.hub.apply(&sambung_pbx::Event::CallRinging { call: 42, target: "bob".into(), target_id: bob_id });
    while api.core.try_recv().is_ok() {}
    let path = "/api/v1/calls/live/42/transfer";
    // Not a party of it, no such call, not answered yet.
    assert_problem(&api.post(&carol, path, json!({ "to": "carol" })).await, StatusCode::NOT_FOUND, "not_found");
    let other = api.post(&root, "/api/v1/calls/live/43/transfer", json!({ "to": "carol" })).await;
    assert_problem(&other, StatusCode::NOT_FOUND, "not_found");
    assert_problem(&api.post(&bob, path, json!({ "to": "carol" })).await, StatusCode::CONFLICT, "not_answered");
    api.hub.apply(&sambung_pbx::Event::CallAnswered {
        call: 42,
        by: "bob's phone".into(),
        account_id: Some(bob_id),
        at: 2,
    });
    // A party that does not exist, a target that cannot be called, the caller to herself.
    let bad = api.post(&bob, path, json!({ "to": "carol", "party": "bystander" })).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value");
    for to in ["nobody", "alice", ""] {
        let bad = api.post(&bob, path, json!({ "to": to })).await;
        assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_target");
    }
    assert!(api.core.try_recv().is_err(), "nothing reached call control");
    // bob sends alice (the caller) on to carol; an administrator sends bob on by extension.
    assert_eq!(api.post(&bob, path, json!({ "to": "carol" })).await.status, StatusCode::ACCEPTED);
    match api.core.try_recv() {
        Ok(sambung_server::transport::Event::TransferCall { call: 42, side, target }) => {
            assert_eq!((side, target.as_str()), (sambung_pbx::Side::A, "carol"));
        }
        other => panic!("call control got {other:?}"),
    }
    let made = api.post(&root, path, json!({ "to": "sip:dave@192.0.2.9", "party": "callee" })).await;
    assert_eq!(made.status, StatusCode::ACCEPTED);
    assert!(matches!(
        api.core.try_recv(),
        Ok(sambung_server::transport::Event::TransferCall { call: 42, side: sambung_pbx::Side::B, .. })
    ));
    // A token needs calls:control.
    let made = api.post(&alice, "/api/v1/me/tokens", json!({ "name": "crm", "scopes": ["calls:read"] })).await;
    let reader = Browser::token(made.json["secret"].as_str().unwrap());
    assert_problem(&api.post(&reader, path, json!({ "to": "carol" })).await, StatusCode::FORBIDDEN, "scope");
    api.close().await;
}

#[tokio::test]
async fn queues_and_an_agents_login() {
    let mut api = Api::new("queues", |config| {
        config.queues.push(sambung_server::config::QueueEntry {
            name: "support".into(),
            extension: Some("700".into()),
            agents: vec!["alice".into(), "carol".into()],
            ..Default::default()
        });
    })
    .await;
    let admin = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let bob = Browser::signed_in(&api.sign_up("bob", "amber meadow 73").await);
    let listed = api.get(&admin, "/api/v1/queues").await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    assert_eq!(listed.json[0]["name"], "support");
    assert_eq!(listed.json[0]["strategy"], "longest-idle");
    assert_eq!(listed.json[0]["waiting"], 0);
    assert_eq!(listed.json[0]["agents"][0]["username"], "alice");
    assert_eq!(listed.json[0]["agents"][0]["state"], "idle");
    assert_problem(&api.get(&alice, "/api/v1/queues").await, StatusCode::FORBIDDEN, "not_admin");
    // alice, an agent, logs out; bob is no agent.
    let login = api.get(&alice, "/api/v1/me/queue-login").await;
    assert_eq!((login.json["logged_in"].clone(), login.json["queues"].clone()), (json!(true), json!(["support"])));
    let out = api.send(&alice, Method::PUT, "/api/v1/me/queue-login", Some(json!({ "logged_in": false }))).await;
    assert_eq!(out.status, StatusCode::OK, "{out:?}");
    assert_eq!(out.json["logged_in"], false);
    assert_eq!(api.store.agents_logged_out().await.unwrap(), ["alice"], "kept across restarts");
    let listed = api.get(&admin, "/api/v1/queues").await;
    assert_eq!(listed.json[0]["agents"][0]["state"], "logged-out");
    assert_problem(&api.get(&bob, "/api/v1/me/queue-login").await, StatusCode::NOT_FOUND, "not_found");
    let refused = api.send(&bob, Method::PUT, "/api/v1/me/queue-login", Some(json!({ "logged_in": true }))).await;
    assert_problem(&refused, StatusCode::NOT_FOUND, "not_found");
    let bad = api.send(&alice, Method::PUT, "/api/v1/me/queue-login", Some(json!({ "logged_in": "yes" }))).await;
    assert_eq!(bad.status.as_u16() / 100, 4, "{bad:?}");
    api.close().await;
}

#[tokio::test]
async fn recordings_are_the_parties_and_the_administrators() {
    let mut api = Api::new("recordings", |_| {}).await;
    let admin = api.admin().await;
    let alice = Browser::signed_in(&api.sign_up("alice", "velvet lantern 19").await);
    let carol = Browser::signed_in(&api.sign_up("carol", "amber meadow 73").await);
    std::fs::create_dir_all(api.dir.join("recordings")).unwrap();
    // A WAV file as the relay writes one: the header, then a second of two 16 kHz channels.
    let mut wav = Vec::new();
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(std::io::Cursor::new(&mut wav), spec).unwrap();
        for n in 0..32_000 {
            writer.write_sample((n % 100) as i16).unwrap();
        }
        writer.finalize().unwrap();
    }
    std::fs::write(api.dir.join("recordings").join("1800000000-call-9.wav"), &wav).unwrap();
    let new = sambung_store::NewRecording {
        name: "1800000000-call-9".into(),
        call_number: 9,
        caller: "alice".into(),
        callee: "bob".into(),
        started_at: 1_800_000_000,
    };
    let id = api.store.add_recording(&new).await.unwrap();
    let mine = api.get(&alice, "/api/v1/recordings").await;
    assert_eq!(mine.status, StatusCode::OK, "{mine:?}");
    assert_eq!(mine.json["items"][0]["call"], 9);
    assert_eq!(mine.json["items"][0]["duration_secs"], 1.0);
    let url = mine.json["items"][0]["audio_url"].as_str().unwrap().to_owned();
    let audio = api.get(&alice, &url).await;
    assert_eq!(audio.status, StatusCode::OK);
    assert_eq!(audio.headers[header::CONTENT_TYPE], "audio/wav");
    // carol took no part: she sees none, and cannot fetch or delete it.
    assert_eq!(api.get(&carol, "/api/v1/recordings").await.json["items"], json!([]));
    assert_problem(&api.get(&carol, &url).await, StatusCode::NOT_FOUND, "not_found");
    let path = format!("/api/v1/recordings/{id}");
    assert_problem(&api.send(&carol, Method::DELETE, &path, None).await, StatusCode::NOT_FOUND, "not_found");
    // The administrator sees it, and deletes it: row and file.
    assert_eq!(api.get(&admin, "/api/v1/recordings").await.json["items"][0]["id"], id);
    assert_eq!(api.send(&admin, Method::DELETE, &path, None).await.status, StatusCode::NO_CONTENT);
    assert!(!api.dir.join("recordings").join("1800000000-call-9.wav").exists());
    assert_problem(&api.get(&alice, &url).await, StatusCode::NOT_FOUND, "not_found");
    api.close().await;
}
