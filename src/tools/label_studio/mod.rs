//! Label Studio's REST API, for `push label-studio` and `pull label-studio`.
//!
//! [`Client`] authenticates the way Label Studio's SDK does ([`auth`]) and turns every failure
//! (no connection, HTTP 4xx/5xx, a wrong token, a body that is not what the API documents)
//! into one line naming the server and Label Studio's own message, as a usage error (exit 2):
//! the user fixes the URL, the token, the project or the server, not labelwise.
//!
//! Endpoints used (Label Studio 1.23, Community and Enterprise):
//! `POST /api/token/refresh/`, `GET`/`PATCH /api/projects/{id}/`, `GET /api/tasks/?project=`
//! (paged), `POST /api/projects/{id}/import`, `GET`/`POST /api/dm/views/`,
//! `PATCH /api/dm/views/{id}/` and `GET /api/projects/{id}/export?exportType=JSON`.

pub mod auth;
pub mod pull;
pub mod push;

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use auth::KeyKind;

/// The environment variable holding the API key, the one Label Studio's SDK reads.
pub const API_KEY_ENV: &str = "LABEL_STUDIO_API_KEY";

/// Largest response body read (an export of a big project is one JSON document).
const MAX_BODY: u64 = 8 << 30;

/// Longest a message quoted from the server may be, so an HTML error page stays one short line.
const MAX_MESSAGE: usize = 400;

/// HTTP methods the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read.
    Get,
    /// Create.
    Post,
    /// Update some fields.
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

/// How requests are authenticated: the header value, and for a JWT personal access token the
/// refresh token and when the access token expires.
#[derive(Debug, Clone)]
struct Auth {
    header: String,
    refresh: Option<String>,
    expires: Option<u64>,
}

/// A connection to one Label Studio server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    auth: RefCell<Auth>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Label Studio's message in an error body, on one line: `detail` (and `validation_errors`)
/// of its JSON errors, an HTML page's `<title>`, or the start of the text.
pub fn server_message(body: &str) -> String {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(m)) => {
            let mut parts = Vec::new();
            for key in ["detail", "error", "message"] {
                if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
                    parts.push(v.as_str().map_or_else(|| v.to_string(), str::to_string));
                }
            }
            if let Some(v) = m.get("validation_errors").filter(|v| !v.is_null()) {
                parts.push(v.to_string());
            }
            if parts.is_empty() {
                Value::Object(m).to_string()
            } else {
                parts.join(": ")
            }
        }
        Ok(other) => other.to_string(),
        Err(_) => match (body.find("<title>"), body.find("</title>")) {
            (Some(a), Some(b)) if a + 7 <= b => body[a + 7..b].to_string(),
            _ => body.to_string(),
        },
    };
    let mut one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX_MESSAGE {
        one_line = one_line.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    if one_line.is_empty() {
        "(empty response)".into()
    } else {
        one_line
    }
}

impl Client {
    /// Connects to the server at `url` with `api_key` (legacy token or personal access token;
    /// the latter is exchanged for an access token now, so a wrong one fails here).
    pub fn connect(url: &str, api_key: &str) -> Result<Client> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "--url must start with http:// or https://, got '{url}'"
            )));
        }
        let api_key = api_key.trim();
        if api_key.is_empty() {
            return Err(Error::Usage(format!(
                "{API_KEY_ENV} is empty: set it to your Label Studio access token \
                 (Account & Settings > Access Token)"
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(1800)))
            .user_agent(format!("labelwise/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let (header, refresh, expires) = match auth::classify(api_key, now())? {
            KeyKind::Legacy => (format!("Token {api_key}"), None, None),
            KeyKind::Access { expires } => (format!("Bearer {api_key}"), None, Some(expires)),
            KeyKind::Refresh { .. } => (String::new(), Some(api_key.to_string()), Some(0)),
        };
        let client = Client {
            base,
            agent,
            auth: RefCell::new(Auth {
                header,
                refresh,
                expires,
            }),
        };
        client.fresh_auth()?;
        Ok(client)
    }

    /// The server's base URL, for messages.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The `Authorization` header value, exchanging the personal access token for a new access
    /// token when there is none yet or it expires within a minute.
    fn fresh_auth(&self) -> Result<String> {
        let auth = self.auth.borrow().clone();
        let (Some(refresh), Some(expires)) = (auth.refresh, auth.expires) else {
            return Ok(auth.header);
        };
        if expires > now() + 60 {
            return Ok(auth.header);
        }
        let body = json!({ "refresh": refresh });
        let reply = self.send(Method::Post, "/api/token/refresh/", Some(&body), None)?;
        let Some(access) = reply.get("access").and_then(Value::as_str) else {
            return Err(self.bad_reply("POST /api/token/refresh/", "no `access` token"));
        };
        let header = format!("Bearer {access}");
        *self.auth.borrow_mut() = Auth {
            header: header.clone(),
            refresh: Some(refresh),
            expires: Some(auth::expiry(access).unwrap_or(now() + 240)),
        };
        Ok(header)
    }

    /// An error for a reply that is not what the API documents.
    pub fn bad_reply(&self, what: &str, problem: &str) -> Error {
        Error::Usage(format!(
            "Label Studio at {}: {what}: unexpected reply: {problem}",
            self.base
        ))
    }

    /// Calls `method path` with a JSON `body`; returns the JSON reply (`null` when empty).
    pub fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let header = self.fresh_auth()?;
        self.send(method, path, body, Some(&header))
    }

    /// Calls `GET path` and returns the raw body (exports are files, not API objects).
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let header = self.fresh_auth()?;
        let (status, bytes) = self.exchange(Method::Get, path, None, Some(&header))?;
        self.check_status(Method::Get, path, status, &bytes)?;
        Ok(bytes)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> Result<Value> {
        let (status, bytes) = self.exchange(method, path, body, auth)?;
        self.check_status(method, path, status, &bytes)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            self.bad_reply(
                &format!("{} {path}", method.as_str()),
                &format!(
                    "not JSON ({e}): {}",
                    server_message(&String::from_utf8_lossy(&bytes))
                ),
            )
        })
    }

    /// Sends one request; returns the status and body, or the transport error as one line.
    fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> Result<(u16, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let transport = |e: ureq::Error| {
            Error::Usage(format!(
                "Label Studio at {}: {} {path}: {e}",
                self.base,
                method.as_str()
            ))
        };
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut response = match method {
            Method::Get => {
                let mut r = self.agent.get(&url).header("Accept", "application/json");
                if let Some(a) = auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            Method::Post | Method::Patch => {
                let mut r = if method == Method::Post {
                    self.agent.post(&url)
                } else {
                    self.agent.patch(&url)
                };
                r = r
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json");
                if let Some(a) = auth {
                    r = r.header("Authorization", a);
                }
                r.send(payload.as_bytes())
            }
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(transport)?;
        Ok((status, bytes))
    }

    fn check_status(&self, method: Method, path: &str, status: u16, body: &[u8]) -> Result<()> {
        if status < 400 {
            return Ok(());
        }
        let hint = match status {
            401 => " (check LABEL_STUDIO_API_KEY)",
            403 => " (this token's user may not access it)",
            404 => " (check --url and --project)",
            _ => "",
        };
        Err(Error::Usage(format!(
            "Label Studio at {}: {} {path}: HTTP {status}: {}{hint}",
            self.base,
            method.as_str(),
            server_message(&String::from_utf8_lossy(body))
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_one_line() {
        let ls = r#"{"id":"x","status_code":401,"version":"1.23.2","detail":"Invalid token.","exc_info":null}"#;
        assert_eq!(server_message(ls), "Invalid token.");
        let v =
            r#"{"detail":"Validation error","validation_errors":{"predictions":["bad\nchoice"]}}"#;
        assert_eq!(
            server_message(v),
            r#"Validation error: {"predictions":["bad\nchoice"]}"#
        );
        let html = "<html><head><title>Server Error (500)</title></head>\n<body>…</body></html>";
        assert_eq!(server_message(html), "Server Error (500)");
        assert_eq!(server_message("  upstream\n  down "), "upstream down");
        assert_eq!(server_message(""), "(empty response)");
        assert!(server_message(&"x ".repeat(1000)).chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn urls_and_keys_are_checked_before_any_request() {
        let e = Client::connect("localhost:8080", "k").err().unwrap();
        assert!(e.to_string().contains("--url must start with http"), "{e}");
        let e = Client::connect("http://127.0.0.1:9", " ").err().unwrap();
        assert!(
            e.to_string().contains("LABEL_STUDIO_API_KEY is empty"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
    }
}
