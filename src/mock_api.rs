//! `taprec mock-api`: a local server implementing the recording API
//! (`POST /fw/Apps/Recorder/WebAPI/Recordings`) strictly, for tests and for
//! people trying taprec without a recording server.
//!
//! It checks the multipart body (exactly a `jsondata` part with
//! `Content-Type: application/json`, then an `attachment` part with a
//! filename), every metadata field and its format, and the WAV (RIFF/WAVE,
//! PCM-16, A-law or u-law, sizes consistent with the file, not empty, at most
//! 256 MiB, the length agreeing with `duration`). It answers 201 with
//! `{"id": "<fresh uuid>"}` and stores `<store>/<id>.wav` and
//! `<store>/<id>.json` (the `jsondata` bytes as received), or 400 with
//! `{"reason": 0|1|2, "message": "..."}`. Every request is logged as one
//! JSON line in `<store>/requests.jsonl`; `GET /mock/stats` returns counters.
//!
//! Fault injection, by request number (POSTs to the API path, from 0):
//! the first `--fail-first N` get `--fail-status`; the next `--drop-first N`
//! have their connection closed without an answer; then the next
//! `--delay-first N` (all, if 0) are answered after `--delay-ms`.
//! `--basic-auth USER:PASS` / `--bearer TOKEN` demand credentials (401), and
//! `--retention-days N` answers 409 to start dates older than N days.

use crate::media::wav;
use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

/// The API's path.
pub const API_PATH: &str = "/fw/Apps/Recorder/WebAPI/Recordings";
/// The API's largest audio file.
pub const MAX_AUDIO_BYTES: u64 = 256 * 1024 * 1024;
/// Largest `jsondata` part accepted.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// `taprec mock-api` options.
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory where accepted recordings are stored.
    #[arg(long)]
    pub store: PathBuf,
    /// Answer the first N requests with `--fail-status`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fail_first: u64,
    /// Status of the injected failures (e.g. 500, 501, 503, 400, 403, 409).
    #[arg(long, value_name = "STATUS", default_value_t = 500)]
    pub fail_status: u16,
    /// Then close the connection of the next N requests without answering.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub drop_first: u64,
    /// Answer after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay_ms: u64,
    /// Only delay the N requests after the failed and dropped ones (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub delay_first: u64,
    /// Require HTTP basic auth with these credentials.
    #[arg(long, value_name = "USER:PASS")]
    pub basic_auth: Option<String>,
    /// Require `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// Answer 409 to recordings that started more than N days ago.
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u64>,
    /// Largest audio file accepted, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_AUDIO_BYTES)]
    pub max_file_bytes: u64,
    /// Do not check that `duration` agrees with the audio's length.
    #[arg(long)]
    pub no_duration_check: bool,
}

/// Counters of the mock server.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    injected: AtomicU64,
    dropped: AtomicU64,
    unauthorized: AtomicU64,
}

struct Shared {
    args: MockArgs,
    counters: Counters,
    log: Mutex<Option<std::fs::File>>,
    ids: AtomicU64,
    seed: u64,
}

#[derive(Clone)]
struct ConnHandle {
    kill: Arc<Notify>,
}

/// Runs the server until killed (or Ctrl-C / SIGTERM); prints
/// `mock-api listening on http://ADDR/...` on stdout once bound.
pub fn run(args: &MockArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("mock-api listening on http://{addr}{API_PATH}");
        std::io::stdout().flush()?;
        tokio::select! {
            r = serve(listener, args.clone()) => r,
            _ = shutdown_signal() => Ok(()),
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Serves the API on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, args: MockArgs) -> Result<()> {
    std::fs::create_dir_all(&args.store)
        .with_context(|| format!("cannot create {}", args.store.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.store.join("requests.jsonl"))?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()).rotate_left(32);
    let shared = Arc::new(Shared {
        args,
        counters: Counters::default(),
        log: Mutex::new(Some(log)),
        ids: AtomicU64::new(0),
        seed,
    });
    let router = Router::new()
        .route(API_PATH, post(upload))
        .route("/mock/stats", get(stats))
        .layer(DefaultBodyLimit::disable())
        .with_state(shared);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let kill = Arc::new(Notify::new());
        let app = router
            .clone()
            .layer(Extension(ConnHandle { kill: kill.clone() }));
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = kill.notified() => {}
            }
        });
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let c = &shared.counters;
    Json(json!({
        "requests": c.requests.load(Ordering::Relaxed),
        "accepted": c.accepted.load(Ordering::Relaxed),
        "rejected": c.rejected.load(Ordering::Relaxed),
        "injected": c.injected.load(Ordering::Relaxed),
        "dropped": c.dropped.load(Ordering::Relaxed),
        "unauthorized": c.unauthorized.load(Ordering::Relaxed),
    }))
}

/// A refusal: status, API reason (400 only) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// The API's reason code (0 InvalidData, 1 InvalidRecordingMetadata,
    /// 2 InvalidRecordingAudioFile), for 400.
    pub reason: Option<u8>,
    /// A human-readable message.
    pub message: String,
}

impl Refusal {
    fn bad(reason: u8, message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            reason: Some(reason),
            message: message.into(),
        }
    }

    fn body(&self) -> Value {
        match self.reason {
            Some(reason) => json!({ "reason": reason, "message": self.message }),
            None => json!({ "message": self.message }),
        }
    }
}

/// What was read from one request's multipart body.
struct Received {
    json: Option<Vec<u8>>,
    file_name: Option<String>,
    wav_tmp: Option<PathBuf>,
    wav_len: u64,
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    request: Request,
) -> Response {
    let n = shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let headers = request.headers().clone();
    let mut received = Received {
        json: None,
        file_name: None,
        wav_tmp: None,
        wav_len: 0,
    };
    let structure = read_body(&shared, n, request, &mut received).await;
    let args = &shared.args;
    let response = if n < args.fail_first {
        shared.counters.injected.fetch_add(1, Ordering::Relaxed);
        let status = args.fail_status;
        let refusal = if status == 400 {
            Refusal::bad(1, "injected failure")
        } else {
            Refusal {
                status,
                reason: None,
                message: format!("injected failure {} of {}", n + 1, args.fail_first),
            }
        };
        Err(refusal)
    } else if n < args.fail_first + args.drop_first {
        shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        cleanup(&received);
        log_line(&shared, json!({ "n": n, "outcome": "dropped" }));
        conn.kill.notify_one();
        // The connection task drops this future with the connection.
        std::future::pending::<()>().await;
        Err(Refusal::bad(0, "unreachable"))
    } else {
        let delayed = n - args.fail_first - args.drop_first;
        if args.delay_ms > 0 && (args.delay_first == 0 || delayed < args.delay_first) {
            tokio::time::sleep(Duration::from_millis(args.delay_ms)).await;
        }
        check_auth(args, &headers)
            .and(structure)
            .and_then(|()| accept(&shared, &received))
    };
    cleanup(&received);
    match response {
        Ok(id) => {
            shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
            log_line(
                &shared,
                json!({ "n": n, "status": 201, "id": id, "filename": received.file_name }),
            );
            (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
        }
        Err(refusal) => {
            if refusal.status == 401 {
                shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            }
            log_line(
                &shared,
                json!({ "n": n, "status": refusal.status, "reason": refusal.reason, "message": refusal.message }),
            );
            let status =
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, Json(refusal.body())).into_response();
            if refusal.status == 401 {
                if let Ok(v) = "Basic realm=\"Recorder\"".parse() {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            response
        }
    }
}

fn cleanup(received: &Received) {
    if let Some(tmp) = &received.wav_tmp {
        let _ = std::fs::remove_file(tmp);
    }
}

fn log_line(shared: &Shared, line: Value) {
    println!("{line}");
    if let Ok(mut guard) = shared.log.lock() {
        if let Some(file) = guard.as_mut() {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn check_auth(args: &MockArgs, headers: &HeaderMap) -> Result<(), Refusal> {
    let unauthorized = |m: &str| Refusal {
        status: 401,
        reason: None,
        message: m.to_string(),
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(expected) = &args.basic_auth {
        use base64::Engine;
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(expected)
        );
        return match given {
            None => Err(unauthorized("Anonymous requesting user")),
            Some(g) if g == want => Ok(()),
            Some(_) => Err(unauthorized("Wrong credentials")),
        };
    }
    if let Some(token) = &args.bearer {
        return match given {
            None => Err(unauthorized("Anonymous requesting user")),
            Some(g) if g.strip_prefix("Bearer ") == Some(token.as_str()) => Ok(()),
            Some(_) => Err(unauthorized("Wrong credentials")),
        };
    }
    Ok(())
}

/// Reads the whole multipart body (even after a structural error, so that
/// the client gets the answer rather than a reset), keeping the JSON and
/// spooling the attachment to a temporary file.
async fn read_body(
    shared: &Shared,
    n: u64,
    request: Request,
    received: &mut Received,
) -> Result<(), Refusal> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        drain(request.into_body()).await;
        return Err(Refusal::bad(
            0,
            format!("Body is not multipart/form-data (Content-Type {content_type:?})"),
        ));
    }
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(m) => m,
        Err(e) => return Err(Refusal::bad(0, format!("Body cannot be parsed: {e}"))),
    };
    let mut error: Option<Refusal> = None;
    let mut index = 0usize;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(
                    error.unwrap_or_else(|| Refusal::bad(0, format!("Body cannot be parsed: {e}")))
                )
            }
        };
        index += 1;
        let name = field.name().unwrap_or("").to_string();
        let expected = match index {
            1 => "jsondata",
            2 => "attachment",
            _ => "",
        };
        if error.is_none() && name != expected {
            error = Some(Refusal::bad(
                0,
                if expected.is_empty() {
                    format!("unexpected part {name:?} after jsondata and attachment")
                } else {
                    format!("part {index} is named {name:?}; expected {expected:?}")
                },
            ));
        }
        if error.is_some() {
            while let Ok(Some(_)) = field.chunk().await {}
            continue;
        }
        if name == "jsondata" {
            let ct = field.content_type().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim().to_string();
            if essence != "application/json" {
                error = Some(Refusal::bad(
                    0,
                    format!("jsondata must have Content-Type application/json, not {ct:?}"),
                ));
            } else if field.file_name().is_some() {
                error = Some(Refusal::bad(0, "jsondata must not be a file"));
            }
            let mut json = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if json.len() + chunk.len() > MAX_JSON_BYTES {
                            if error.is_none() {
                                error = Some(Refusal::bad(0, "jsondata is larger than 64 KiB"));
                            }
                        } else {
                            json.extend_from_slice(&chunk);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(Refusal::bad(0, format!("Body cannot be parsed: {e}"))),
                }
            }
            received.json = Some(json);
        } else {
            match field.file_name() {
                Some(f) if !f.trim().is_empty() => received.file_name = Some(f.to_string()),
                _ => {
                    error = Some(Refusal::bad(0, "attachment has no filename"));
                }
            }
            let tmp = shared.args.store.join(format!(".incoming-{n}.wav"));
            let mut file = match tokio::fs::File::create(&tmp).await {
                Ok(f) => f,
                Err(e) => {
                    return Err(Refusal {
                        status: 500,
                        reason: None,
                        message: format!("cannot store the attachment: {e}"),
                    })
                }
            };
            received.wav_tmp = Some(tmp);
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        received.wav_len += chunk.len() as u64;
                        if received.wav_len <= shared.args.max_file_bytes {
                            if let Err(e) = file.write_all(&chunk).await {
                                return Err(Refusal {
                                    status: 500,
                                    reason: None,
                                    message: format!("cannot store the attachment: {e}"),
                                });
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(Refusal::bad(0, format!("Body cannot be parsed: {e}"))),
                }
            }
            if let Err(e) = file.flush().await {
                return Err(Refusal {
                    status: 500,
                    reason: None,
                    message: format!("cannot store the attachment: {e}"),
                });
            }
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if received.json.is_none() {
        return Err(Refusal::bad(0, "no jsondata part"));
    }
    if received.wav_tmp.is_none() {
        return Err(Refusal::bad(2, "no attachment part"));
    }
    Ok(())
}

async fn drain(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// Validates a received request and stores it; returns the new id.
fn accept(shared: &Shared, received: &Received) -> Result<String, Refusal> {
    let args = &shared.args;
    let json = received.json.as_deref().unwrap_or_default();
    let meta = validate_metadata(json)?;
    if received.wav_len > args.max_file_bytes {
        return Err(Refusal::bad(
            2,
            format!(
                "audio file of {} bytes is larger than the maximum {}",
                received.wav_len, args.max_file_bytes
            ),
        ));
    }
    let tmp = received.wav_tmp.as_deref().unwrap_or(Path::new(""));
    let seconds = validate_wav(tmp).map_err(|m| Refusal::bad(2, m))?;
    if !args.no_duration_check {
        if let Some(declared) = meta.duration_secs {
            let tolerance = 1.5f64.max(seconds * 0.02);
            if (declared - seconds).abs() > tolerance {
                return Err(Refusal::bad(
                    1,
                    format!(
                        "duration {declared} s does not match the audio track ({seconds:.3} s)"
                    ),
                ));
            }
        }
    }
    if let Some(days) = args.retention_days {
        let limit = chrono::Utc::now() - chrono::Duration::days(i64::try_from(days).unwrap_or(0));
        if meta.start < limit {
            return Err(Refusal {
                status: 409,
                reason: None,
                message: format!(
                    "The recording start date {} is out of the retention period ({days} days)",
                    meta.start.to_rfc3339()
                ),
            });
        }
    }
    let id = fresh_id(shared);
    let store = &args.store;
    let internal = |e: std::io::Error| Refusal {
        status: 500,
        reason: None,
        message: format!("cannot store the recording: {e}"),
    };
    // WAV first, then the JSON, each appearing whole (rename): a reader that
    // finds `<id>.json` finds a complete pair.
    std::fs::rename(tmp, store.join(format!("{id}.wav"))).map_err(internal)?;
    let part = store.join(format!(".{id}.json.part"));
    std::fs::write(&part, json).map_err(internal)?;
    std::fs::rename(&part, store.join(format!("{id}.json"))).map_err(internal)?;
    Ok(id)
}

fn fresh_id(shared: &Shared) -> String {
    let n = shared.ids.fetch_add(1, Ordering::Relaxed);
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let hi = mix(shared.seed ^ n);
    let lo = mix(hi ^ n.rotate_left(17));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0x0FFF,
        0x8000 | ((lo >> 48) & 0x3FFF),
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// What the metadata check extracted.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedMetadata {
    /// `startDateTime`, parsed.
    pub start: chrono::DateTime<chrono::Utc>,
    /// `duration` in seconds (None for durations in months or years).
    pub duration_secs: Option<f64>,
}

/// Validates the `jsondata` object as the API documents it (fields, types,
/// formats); unknown fields are refused too.
pub fn validate_metadata(json: &[u8]) -> Result<CheckedMetadata, Refusal> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| Refusal::bad(0, format!("jsondata cannot be parsed: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Refusal::bad(0, "jsondata is not a JSON object"));
    };
    let bad = |m: String| Err(Refusal::bad(1, m));
    const KNOWN: [&str; 8] = [
        "startDateTime",
        "duration",
        "direction",
        "localParty",
        "remoteParty",
        "pbxCallId",
        "notes",
        "preserved",
    ];
    for key in obj.keys() {
        if !KNOWN.contains(&key.as_str()) {
            return bad(format!("unknown field {key:?}"));
        }
    }
    let start = match obj.get("startDateTime") {
        Some(Value::String(s)) => match parse_datetime(s) {
            Some(t) => t,
            None => {
                return bad(format!(
                    "startDateTime {s:?} is not an ISO 8601 date and time"
                ))
            }
        },
        Some(_) => return bad("startDateTime must be a string".into()),
        None => return bad("startDateTime is required".into()),
    };
    let duration = match obj.get("duration") {
        Some(Value::String(s)) => match parse_duration(s) {
            Some(d) => d,
            None => return bad(format!("duration {s:?} is not an ISO 8601 duration")),
        },
        Some(_) => return bad("duration must be a string".into()),
        None => return bad("duration is required".into()),
    };
    match obj.get("direction") {
        Some(Value::Number(n)) if matches!(n.as_u64(), Some(0..=2)) => {}
        Some(other) => return bad(format!("direction must be 0, 1 or 2, not {other}")),
        None => return bad("direction is required".into()),
    }
    match obj.get("localParty") {
        Some(Value::Object(lp)) => {
            check_object(lp, "localParty", &["username", "phoneNumber"], true)?;
        }
        Some(_) => return bad("localParty must be an object".into()),
        None => return bad("localParty is required".into()),
    }
    match obj.get("remoteParty") {
        None | Some(Value::Null) => {}
        Some(Value::Object(rp)) => check_object(rp, "remoteParty", &["phoneNumber"], false)?,
        Some(_) => return bad("remoteParty must be an object".into()),
    }
    for key in ["pbxCallId", "notes"] {
        match obj.get(key) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => return bad(format!("{key} must be a string")),
        }
    }
    match obj.get("preserved") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => return bad("preserved must be true or false".into()),
    }
    Ok(CheckedMetadata {
        start,
        duration_secs: duration,
    })
}

fn check_object(
    obj: &Map<String, Value>,
    name: &str,
    fields: &[&str],
    required: bool,
) -> Result<(), Refusal> {
    for key in obj.keys() {
        if !fields.contains(&key.as_str()) {
            return Err(Refusal::bad(1, format!("unknown field {name}.{key}")));
        }
    }
    for field in fields {
        match obj.get(*field) {
            Some(Value::String(s)) if required && s.trim().is_empty() => {
                return Err(Refusal::bad(1, format!("{name}.{field} is empty")))
            }
            Some(Value::String(_)) => {}
            None | Some(Value::Null) if !required => {}
            None | Some(Value::Null) => {
                return Err(Refusal::bad(1, format!("{name}.{field} is required")))
            }
            Some(_) => return Err(Refusal::bad(1, format!("{name}.{field} must be a string"))),
        }
    }
    Ok(())
}

/// Parses an ISO 8601 date and time with a zone: `YYYY-MM-DDTHH:MM:SS`,
/// optional fraction (1 to 9 digits), then `Z` or `+HH:MM`/`-HH:MM`.
pub fn parse_datetime(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let b = s.as_bytes();
    if b.len() < 20 || b.get(10) != Some(&b'T') {
        return None;
    }
    let frac = s.get(19..)?;
    if let Some(rest) = frac.strip_prefix('.') {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Parses an ISO 8601 duration (`PnYnMnWnDTnHnMnS`, the smallest unit may
/// have a fraction); returns seconds, or `Some(None)` when it has years or
/// months (no fixed length).
pub fn parse_duration(s: &str) -> Option<Option<f64>> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let mut secs = 0f64;
    let mut fixed = true;
    let mut components = 0;
    // Only the smallest component given may have a fraction.
    let mut had_fraction = false;
    let mut parse_part = |part: &str, units: &[(u8, f64)]| -> Option<()> {
        let mut i = 0;
        let bytes = part.as_bytes();
        let mut last_unit = 0usize;
        while i < bytes.len() {
            if had_fraction {
                return None;
            }
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b',')
            {
                i += 1;
            }
            let number = part.get(start..i)?.replace(',', ".");
            if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
                return None;
            }
            if number.matches('.').count() > 1 {
                return None;
            }
            had_fraction = number.contains('.');
            let value: f64 = number.parse().ok()?;
            let unit = *bytes.get(i)?;
            i += 1;
            let pos = units.iter().position(|(u, _)| *u == unit)?;
            if pos < last_unit {
                return None;
            }
            last_unit = pos + 1;
            let factor = units[pos].1;
            if factor < 0.0 {
                fixed = false;
            } else {
                secs += value * factor;
            }
            components += 1;
        }
        Some(())
    };
    parse_part(
        date,
        &[
            (b'Y', -1.0),
            (b'M', -1.0),
            (b'W', 604_800.0),
            (b'D', 86_400.0),
        ],
    )?;
    if let Some(t) = time {
        parse_part(t, &[(b'H', 3600.0), (b'M', 60.0), (b'S', 1.0)])?;
    }
    if components == 0 {
        return None;
    }
    Some(if fixed { Some(secs) } else { None })
}

/// Checks a stored attachment: RIFF/WAVE, PCM-16 / A-law / u-law, sizes
/// consistent with the file, some audio. Returns its length in seconds.
pub fn validate_wav(path: &Path) -> Result<f64, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("audio file unreadable: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("audio file unreadable: {e}"))?
        .len();
    let mut riff = [0u8; 8];
    std::io::Read::read_exact(&mut file, &mut riff)
        .map_err(|_| "audio file is too short to be a WAV".to_string())?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let info =
        wav::read_info(&mut file).map_err(|e| format!("audio file is not a supported WAV: {e}"))?;
    let riff_size = u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]));
    if riff_size + 8 != len {
        return Err(format!(
            "RIFF size {riff_size} does not match the file ({len} bytes)"
        ));
    }
    if info.data_offset + info.data_len > len {
        return Err(format!(
            "data chunk of {} bytes runs past the end of the file",
            info.data_len
        ));
    }
    if info.data_len % info.block_align() != 0 {
        return Err("data chunk is not a whole number of frames".into());
    }
    if info.data_len == 0 {
        return Err("audio track is empty".into());
    }
    if info.sample_rate == 0 || info.channels > 2 {
        return Err(format!(
            "unsupported audio: {} channels at {} Hz",
            info.channels, info.sample_rate
        ));
    }
    Ok(info.frames() as f64 / f64::from(info.sample_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_json() -> Value {
        json!({
            "direction": 2,
            "localParty": { "phoneNumber": "376", "username": "giuliano" },
            "pbxCallId": "1",
            "preserved": true,
            "duration": "PT1M30S",
            "notes": "text describing recording content",
            "startDateTime": "2018-09-25T13:00:00.0000000Z",
            "remoteParty": { "phoneNumber": "123456" }
        })
    }

    fn check(v: &Value) -> Result<CheckedMetadata, Refusal> {
        validate_metadata(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn the_documented_example_is_valid() {
        let m = check(&meta_json()).unwrap();
        assert_eq!(m.duration_secs, Some(90.0));
        assert_eq!(m.start.to_rfc3339(), "2018-09-25T13:00:00+00:00");
    }

    #[test]
    fn every_field_is_checked() {
        let cases: Vec<(&str, Value)> = vec![
            ("startDateTime", json!("2018-09-25 13:00:00Z")),
            ("startDateTime", json!("2018-09-25T13:00:00")),
            ("startDateTime", json!(12)),
            ("duration", json!("90")),
            ("duration", json!("PT")),
            ("duration", json!("P1.5DT1H")),
            ("duration", json!("PT1S30M")),
            ("direction", json!(3)),
            ("direction", json!("1")),
            ("localParty", json!({ "username": "u" })),
            ("localParty", json!({ "username": "", "phoneNumber": "1" })),
            ("localParty", json!("u")),
            ("remoteParty", json!({ "phone": "1" })),
            ("pbxCallId", json!(1)),
            ("preserved", json!("yes")),
            ("startDatetime", json!("x")),
        ];
        for (key, value) in cases {
            let mut v = meta_json();
            v[key] = value.clone();
            let err = check(&v).unwrap_err();
            assert_eq!((err.status, err.reason), (400, Some(1)), "{key} = {value}");
        }
        for key in ["startDateTime", "duration", "direction", "localParty"] {
            let mut v = meta_json();
            v.as_object_mut().unwrap().remove(key);
            assert_eq!(check(&v).unwrap_err().reason, Some(1), "{key}");
        }
        for key in ["remoteParty", "pbxCallId", "notes", "preserved"] {
            let mut v = meta_json();
            v.as_object_mut().unwrap().remove(key);
            assert!(check(&v).is_ok(), "{key} is optional");
        }
        assert_eq!(validate_metadata(b"{").unwrap_err().reason, Some(0));
        assert_eq!(validate_metadata(b"[1]").unwrap_err().reason, Some(0));
    }

    #[test]
    fn iso_8601_durations() {
        assert_eq!(parse_duration("PT1M30S"), Some(Some(90.0)));
        assert_eq!(parse_duration("PT4.52S"), Some(Some(4.52)));
        assert_eq!(parse_duration("PT1H0M2.5S"), Some(Some(3602.5)));
        assert_eq!(parse_duration("PT0S"), Some(Some(0.0)));
        assert_eq!(parse_duration("P1DT1S"), Some(Some(86_401.0)));
        assert_eq!(parse_duration("P1M"), Some(None));
        for bad in [
            "", "P", "PT", "T1S", "PT1", "PT.5S", "PT1.S", "PT1.5M3S", "PTS", "PT1X",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn datetimes_need_a_zone_and_t() {
        assert!(parse_datetime("2018-09-25T13:00:00.000000Z").is_some());
        assert!(parse_datetime("2018-09-25T13:00:00+02:00").is_some());
        assert!(parse_datetime("2018-09-25T13:00:00.Z").is_none());
        assert!(parse_datetime("2018-09-25T13:00:00.1234567890Z").is_none());
        assert!(parse_datetime("2018-13-25T13:00:00Z").is_none());
        assert!(parse_datetime("2018-09-25").is_none());
    }

    #[test]
    fn wav_checks() {
        use crate::media::wav::WavWriter;
        use crate::media::{Law, SampleFormat};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = WavWriter::new(
            std::fs::File::create(&path).unwrap(),
            SampleFormat::G711(Law::Alaw),
            2,
        )
        .unwrap();
        w.write_g711(&[0xD5; 16000]).unwrap();
        w.finish().unwrap();
        assert_eq!(validate_wav(&path), Ok(1.0));
        // Trailing garbage breaks the RIFF size.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        assert!(validate_wav(&path).unwrap_err().contains("RIFF size"));
        // An unfinished header (sizes zero).
        let w = WavWriter::new(
            std::fs::File::create(&path).unwrap(),
            SampleFormat::Pcm16,
            2,
        )
        .unwrap();
        drop(w);
        assert!(validate_wav(&path).is_err());
        std::fs::write(&path, b"ID3\x03 not a wav at all").unwrap();
        assert!(validate_wav(&path)
            .unwrap_err()
            .contains("not a supported WAV"));
    }

    #[test]
    fn ids_look_like_uuids_and_differ() {
        let shared = Shared {
            args: MockArgs {
                listen: "127.0.0.1:0".parse().unwrap(),
                store: PathBuf::from("x"),
                fail_first: 0,
                fail_status: 500,
                drop_first: 0,
                delay_ms: 0,
                delay_first: 0,
                basic_auth: None,
                bearer: None,
                retention_days: None,
                max_file_bytes: MAX_AUDIO_BYTES,
                no_duration_check: false,
            },
            counters: Counters::default(),
            log: Mutex::new(None),
            ids: AtomicU64::new(0),
            seed: 1,
        };
        let a = fresh_id(&shared);
        let b = fresh_id(&shared);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
