//! Reading uploads: a multipart form (files and text fields) or a raw image
//! body (`Content-Type: image/*` or `application/octet-stream`), bounded by
//! the body limit before anything is buffered past it.

use std::collections::BTreeMap;

use axum::body::{to_bytes, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};

use crate::error::{ApiError, ApiResult};

/// One uploaded file.
pub struct File {
    pub field: String,
    /// The client's file name, used only in replies and error messages.
    pub name: String,
    pub bytes: Bytes,
}

/// An upload's files and text fields.
#[derive(Default)]
pub struct Form {
    pub files: Vec<File>,
    pub text: BTreeMap<String, String>,
}

impl Form {
    /// The one file in `field`, or a 400 naming the field.
    pub fn file(&mut self, field: &str) -> ApiResult<File> {
        match self.files.iter().position(|f| f.field == field) {
            Some(i) => Ok(self.files.remove(i)),
            None => Err(ApiError::bad_request(format!(
                "no image: send it as a multipart field named `{field}`, or as the raw body with Content-Type image/jpeg"
            ))),
        }
    }

    pub fn text(&self, field: &str) -> ApiResult<&str> {
        self.text
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("missing the form field `{field}`")))
    }
}

/// Reads (and drops) a refused request's body, within `limit` and a few
/// seconds, so that a client still sending its upload reads the answer
/// instead of a reset connection.
pub async fn discard(request: Request, limit: usize) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), to_bytes(request.into_body(), limit)).await;
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body above the {} MB limit", limit >> 20))
}

/// Reads the request's upload; `raw_field` names the file a raw body stands for.
pub async fn read(request: Request, limit: usize, raw_field: &str) -> ApiResult<Form> {
    let headers = request.headers();
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return read_multipart(request, limit).await;
    }
    if content_type.starts_with("image/") || content_type.starts_with("application/octet-stream") {
        let bytes = to_bytes(request.into_body(), limit).await.map_err(|_| too_large(limit))?;
        let file = File { field: raw_field.to_string(), name: "upload".into(), bytes };
        return Ok(Form { files: vec![file], text: BTreeMap::new() });
    }
    let shown = if content_type.is_empty() { "none".to_string() } else { format!("{content_type:?}") };
    discard(request, limit).await;
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Content-Type {shown}: send multipart/form-data, or the image itself as image/jpeg, image/png, ..."),
    ))
}

async fn read_multipart(request: Request, limit: usize) -> ApiResult<Form> {
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut form = Form::default();
    let mut total = 0usize;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, limit)),
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(String::from);
        let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
        total += bytes.len();
        if total > limit {
            return Err(too_large(limit));
        }
        match file_name {
            Some(file_name) => form.files.push(File { field: name, name: file_name, bytes }),
            None => {
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad_request(format!("form field `{name}` is not UTF-8 text")))?;
                form.text.insert(name, text);
            }
        }
    }
    Ok(form)
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}
