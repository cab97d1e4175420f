//! One HTTP attempt: a multipart POST exactly as the recording API
//! describes, the WAV streamed from disk with a Content-Length, watched for
//! progress rather than bounded by a total deadline.

use super::retry::{classify, Verdict};
use super::split::PartPlan;
use crate::config::UploadConfig;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Most bytes of an answer read (the API's answers are tiny JSON objects).
const MAX_ANSWER: usize = 64 * 1024;

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

/// An HTTP client for the recording API.
#[derive(Clone)]
pub struct ApiClient {
    client: reqwest::Client,
    url: String,
    auth: Auth,
    idle: Duration,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::Bearer(_) => "bearer",
        };
        f.debug_struct("ApiClient")
            .field("url", &self.url)
            .field("auth", &auth)
            .field("idle", &self.idle)
            .finish()
    }
}

fn read_secret(path: &Path, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("upload.{key} = {:?} cannot be read", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

impl ApiClient {
    /// Builds the client from `[upload]` (reads secret files and the CA file).
    pub fn new(config: &UploadConfig) -> Result<ApiClient> {
        if config.url.is_empty() {
            bail!("upload.url is not set");
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.idle_timeout_secs))
            .user_agent(concat!("taprec/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("upload.ca_file = {:?} cannot be read", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "upload.ca_file = {:?} is not a PEM certificate",
                    path.display()
                )
            })?;
            if certs.is_empty() {
                bail!("upload.ca_file = {:?} holds no certificate", path.display());
            }
            builder = builder.tls_certs_only(certs);
        }
        if config.insecure_accept_invalid_certs {
            tracing::warn!(
                "upload.insecure_accept_invalid_certs: the server's certificate is NOT checked"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder.build().context("cannot build the HTTP client")?;
        let auth = if !config.password.is_empty() || config.password_file.is_some() {
            let password = match &config.password_file {
                Some(path) => read_secret(path, "password_file")?,
                None => config.password.clone(),
            };
            Auth::Basic {
                user: config.username.clone(),
                password,
            }
        } else if !config.bearer_token.is_empty() || config.bearer_token_file.is_some() {
            Auth::Bearer(match &config.bearer_token_file {
                Some(path) => read_secret(path, "bearer_token_file")?,
                None => config.bearer_token.clone(),
            })
        } else {
            Auth::None
        };
        Ok(ApiClient {
            client,
            url: config.url.clone(),
            auth,
            idle: Duration::from_secs(config.idle_timeout_secs),
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Uploads one part of the recording at `wav` and says what to do next.
    /// Never fails: IO and network errors become [`Verdict::Retry`].
    pub async fn send(&self, part: &PartPlan, wav: &Path) -> Verdict {
        match self.try_send(part, wav).await {
            Ok(verdict) => verdict,
            Err(e) => Verdict::Retry {
                why: format!("{e:#}"),
            },
        }
    }

    async fn try_send(&self, part: &PartPlan, wav: &Path) -> Result<Verdict> {
        let json = serde_json::to_string(&part.metadata)?;
        let mut file = tokio::fs::File::open(wav)
            .await
            .with_context(|| format!("cannot open {}", wav.display()))?;
        file.seek(std::io::SeekFrom::Start(part.file_offset))
            .await?;
        let started = Instant::now();
        let progress = Arc::new(AtomicU64::new(0));
        let mark = {
            let progress = progress.clone();
            move || {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                progress.store(ms, Ordering::Relaxed);
            }
        };
        let head = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(
            part.header.clone(),
        ))]);
        let tail = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(
            part.trailer.clone(),
        ))]);
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(part.file_len), 64 * 1024);
        let stream = head.chain(body).chain(tail).map(move |chunk| {
            mark();
            chunk
        });
        let attachment =
            Part::stream_with_length(reqwest::Body::wrap_stream(stream), part.content_length())
                .file_name(part.file_name.clone())
                .mime_str("audio/wav")?;
        let jsondata = Part::text(json).mime_str("application/json")?;
        let form = Form::new()
            .part("jsondata", jsondata)
            .part("attachment", attachment);
        let mut request = self.client.post(&self.url).multipart(form);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let mut response = response;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                let room = MAX_ANSWER.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, body))
        };
        let idle = self.idle;
        let watchdog = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250).min(idle)).await;
                let last = Duration::from_millis(progress.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) > idle {
                    return;
                }
            }
        };
        tokio::select! {
            result = exchange => match result {
                Ok((status, body)) => Ok(classify(status, &body)),
                Err(e) => Ok(Verdict::Retry { why: describe(&e) }),
            },
            () = watchdog => Ok(Verdict::Retry {
                why: format!("no progress for {} s (upload stalled or no answer)", idle.as_secs()),
            }),
        }
    }
}

/// A transport error in words, with its causes (never the URL's credentials:
/// they are not in the URL).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_request() || e.is_body() {
        "connection failed during the request"
    } else {
        "HTTP error"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
