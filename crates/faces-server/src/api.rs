//! The route handlers. Inference runs on the worker pool, gallery and audit
//! work on tokio's blocking threads; handlers only move data between them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, Request, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use faces_core::gallery::{Enrolment, Gallery};
use faces_core::identify::{NamedFace, Policy};
use faces_core::image::{self, ImageLimits};
use faces_core::models::sha256_bytes;
use faces_core::pipeline::{EmbeddedFace, Pipeline};
use faces_core::privacy::{ConsentInput, Event};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::Caller;
use crate::upload::{self, File, Form};
use crate::{Loaded, State};

type St = AxumState<Arc<State>>;

impl State {
    /// Runs `f` on the inference pool within the request timeout.
    async fn infer<T: Send + 'static>(&self, f: impl FnOnce(&Pipeline) -> T + Send + 'static) -> ApiResult<T> {
        let pipeline = Arc::clone(&self.pipeline);
        let Ok(rx) = self.pool.submit(move || f(&pipeline)) else {
            self.metrics.refused_busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::busy("the server is busy: every worker and queue place is taken; retry shortly", 1));
        };
        match tokio::time::timeout(self.config.timeout, rx).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ApiError::internal("the worker stopped before answering")),
            Err(_) => Err(ApiError::busy(format!("timed out after {} s waiting for the answer", self.config.timeout.as_secs()), 2)),
        }
    }

    /// Runs `f` with the gallery on a blocking thread.
    async fn with_gallery<T: Send + 'static>(self: &Arc<Self>, f: impl FnOnce(&mut Gallery) -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut gallery = state.gallery.lock().map_err(|_| ApiError::internal("gallery lock poisoned"))?;
            f(&mut gallery)
        })
        .await
        .map_err(|_| ApiError::internal("gallery task failed"))?
    }

    /// The gallery as loaded, reloaded first when it changed (another
    /// process wrote to it, or `force` after this service did) or the day
    /// turned (a consent may have expired).
    async fn loaded(self: &Arc<Self>, force: bool) -> ApiResult<Loaded> {
        let state = Arc::clone(self);
        self.with_gallery(move |g| {
            let version = g.data_version()?;
            let today = faces_core::privacy::consent::today();
            if let Ok(current) = state.loaded.read() {
                if !force && current.version == version && current.day == today {
                    return Ok(current.clone());
                }
            }
            let loaded = Loaded::from(g)?;
            if let Ok(mut slot) = state.loaded.write() {
                *slot = loaded.clone();
            }
            Ok(loaded)
        })
        .await
    }

    /// Appends an audit entry under the caller's key.
    async fn audit(self: &Arc<Self>, caller: &Caller, action: &str, counts: Value, subjects: Vec<String>) -> ApiResult<()> {
        let event = Event {
            action: action.into(),
            purpose: caller.purpose.clone(),
            gallery: Some(self.gallery_name.clone()),
            counts: counts.as_object().cloned().unwrap_or_default(),
            subjects,
        };
        let (state, actor) = (Arc::clone(self), caller.actor());
        tokio::task::spawn_blocking(move || state.audit.append(&actor, event))
            .await
            .map_err(|_| ApiError::internal("audit task failed"))?
            .map_err(|e| ApiError::internal(format!("could not write the audit trail: {e}")))?;
        Ok(())
    }

    fn limits(&self) -> ImageLimits {
        ImageLimits { max_pixels: self.config.max_pixels, max_file_bytes: self.config.max_body_bytes as u64 }
    }

    /// The request's upload, read within the body limit and the request timeout.
    async fn form(&self, request: Request, raw_field: &str) -> ApiResult<Form> {
        match tokio::time::timeout(self.config.timeout, upload::read(request, self.config.max_body_bytes, raw_field)).await {
            Ok(form) => form,
            Err(_) => Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, format!("the upload took more than {} s", self.config.timeout.as_secs()))),
        }
    }
}

fn decode(file: &File, limits: &ImageLimits) -> faces_core::Result<image::RgbImage> {
    image::decode(&file.bytes, Path::new(&file.name), limits)
}

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(AxumState(state): St) -> ApiResult<Json<Value>> {
    let loaded = state.loaded(false).await?;
    Ok(Json(json!({
        "status": "ready",
        "model": state.pipeline.embedder.name,
        "subjects": loaded.searcher.names.len(),
        "workers": state.pool.workers,
        "queue_capacity": state.pool.capacity,
        "waiting": state.pool.waiting(),
    })))
}

pub async fn openapi() -> Json<Value> {
    Json(crate::routes::openapi())
}

pub async fn metrics(AxumState(state): St) -> Response {
    let text = state.metrics.render(state.pool.waiting(), state.pool.capacity, state.pool.workers);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("web/index.html")).into_response()
}

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("web/app.js")).into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("web/style.css")).into_response()
}

#[derive(Serialize)]
pub struct Detected {
    file: String,
    width: u32,
    height: u32,
    faces: Vec<faces_core::Face>,
}

pub async fn detect(AxumState(state): St, Extension(caller): Extension<Caller>, request: Request) -> ApiResult<Json<Detected>> {
    let file = state.form(request, "image").await?.file("image")?;
    let limits = state.limits();
    let detected = state
        .infer(move |p| -> faces_core::Result<Detected> {
            let img = decode(&file, &limits)?;
            let faces = p.detector.detect(&img, &p.detect)?;
            Ok(Detected { file: file.name, width: img.width(), height: img.height(), faces })
        })
        .await??;
    state.metrics.faces.fetch_add(detected.faces.len() as u64, std::sync::atomic::Ordering::Relaxed);
    state.audit(&caller, "detect", json!({ "photos": 1, "faces": detected.faces.len() }), Vec::new()).await?;
    Ok(Json(detected))
}

pub async fn compare(AxumState(state): St, Extension(caller): Extension<Caller>, request: Request) -> ApiResult<Json<Value>> {
    let mut form = state.form(request, "a").await?;
    let (a, b) = (form.file("a")?, form.file("b")?);
    let limits = state.limits();
    let faces = state
        .infer(move |p| -> faces_core::Result<(Option<EmbeddedFace>, Option<EmbeddedFace>)> {
            Ok((p.main_face(&decode(&a, &limits)?)?, p.main_face(&decode(&b, &limits)?)?))
        })
        .await??;
    let (Some(fa), Some(fb)) = faces else {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no face found in one of the photos"));
    };
    let Loaded { threshold, confidence, .. } = state.loaded(false).await?;
    let similarity = fa.embedding.similarity(&fb.embedding);
    let confidence = confidence.or(state.pipeline.embedder.confidence).map(|c| c.probability(similarity));
    state.audit(&caller, "compare", json!({ "photos": 2, "faces": 2 }), Vec::new()).await?;
    Ok(Json(json!({
        "similarity": similarity,
        "confidence": confidence,
        "threshold": threshold,
        "same": similarity >= threshold,
        "model": state.pipeline.embedder.name,
    })))
}

#[derive(Deserialize)]
pub struct IdentifyQuery {
    top_k: Option<usize>,
    threshold: Option<f32>,
    min_margin: Option<f32>,
    main_face: Option<bool>,
}

#[derive(Serialize)]
pub struct Identified {
    file: String,
    faces: Vec<NamedFace>,
}

pub async fn identify(AxumState(state): St, Extension(caller): Extension<Caller>, Query(q): Query<IdentifyQuery>, request: Request) -> ApiResult<Json<Identified>> {
    let loaded = state.loaded(false).await?;
    if loaded.purpose_required && caller.purpose.is_none() {
        upload::discard(request, state.config.max_body_bytes).await;
        return Err(ApiError::bad_request("this gallery requires a stated purpose for every search: send an X-Purpose header"));
    }
    let file = state.form(request, "image").await?.file("image")?;
    let policy = Policy {
        threshold: q.threshold.unwrap_or(loaded.threshold),
        min_margin: q.min_margin.unwrap_or(0.03),
        top_k: q.top_k.unwrap_or(5).clamp(1, 100),
        confidence: loaded.confidence.or(state.pipeline.embedder.confidence),
    };
    let searcher = loaded.searcher;
    let (limits, main_only) = (state.limits(), q.main_face.unwrap_or(false));
    let search = Arc::clone(&searcher);
    let result = state
        .infer(move |p| -> faces_core::Result<Identified> {
            let img = decode(&file, &limits)?;
            let embedded = if main_only { p.main_face(&img)?.into_iter().collect() } else { p.faces(&img)? };
            let faces = embedded.into_iter().map(|e| NamedFace { id: search.identify(&e.embedding, &policy), face: e.face }).collect();
            Ok(Identified { file: file.name, faces })
        })
        .await?;
    let identified = match result {
        Ok(identified) => identified,
        Err(e) => {
            state.audit(&caller, "identify", json!({ "photos": 0, "faces": 0, "named": 0, "failed": 1 }), Vec::new()).await?;
            return Err(e.into());
        }
    };
    let named: Vec<&NamedFace> = identified.faces.iter().filter(|f| f.id.name != faces_core::identify::UNKNOWN).collect();
    let mut ids: Vec<String> = named.iter().filter_map(|f| searcher.id_of(&f.id.name).map(String::from)).collect();
    ids.sort();
    ids.dedup();
    let counts = json!({ "photos": 1, "faces": identified.faces.len(), "named": named.len(), "failed": 0 });
    state.audit(&caller, "identify", counts, ids).await?;
    state.metrics.faces.fetch_add(identified.faces.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(Json(identified))
}

pub async fn list_subjects(AxumState(state): St, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let subjects = state.with_gallery(|g| Ok(g.subjects()?)).await?;
    state.audit(&caller, "subjects-list", json!({ "subjects": subjects.len() }), Vec::new()).await?;
    Ok(Json(json!({ "subjects": subjects })))
}

pub async fn enrol(AxumState(state): St, Extension(caller): Extension<Caller>, request: Request) -> ApiResult<Json<Value>> {
    let mut form = state.form(request, "image").await?;
    let name = form.text("name")?.trim().to_string();
    let files: Vec<File> = std::mem::take(&mut form.files).into_iter().filter(|f| f.field == "image").collect();
    if files.is_empty() {
        return Err(ApiError::bad_request("no photos: send one or more multipart files named `image`"));
    }
    let who = name.clone();
    let (missing, known) = state
        .with_gallery(move |g| {
            let missing = !g.without_consent([who.as_str()])?.is_empty();
            Ok((missing, g.known_photos()?))
        })
        .await?;
    if missing {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{name} has no active consent record: record one first (POST /v1/consent, or `faces consent add`)"),
        ));
    }
    let limits = state.limits();
    let subject = name.clone();
    let outcomes = state
        .infer(move |p| {
            files
                .into_iter()
                .map(|file| {
                    let sha256 = sha256_bytes(&file.bytes);
                    if known.contains(&(subject.clone(), sha256.clone())) {
                        return Ok(None);
                    }
                    let face = p.main_face(&decode(&file, &limits)?)?.map(|f| (f.face, f.embedding));
                    Ok(Some(Enrolment { subject: subject.clone(), path: PathBuf::from(format!("upload:{}", file.name)), sha256, face }))
                })
                .collect::<Vec<faces_core::Result<Option<Enrolment>>>>()
        })
        .await?;
    let mut batch = Vec::new();
    let (mut already, mut failed) = (0, Vec::new());
    for outcome in outcomes {
        match outcome {
            Ok(Some(e)) => batch.push(e),
            Ok(None) => already += 1,
            Err(e) => failed.push(e.to_string()),
        }
    }
    if batch.is_empty() && already == 0 {
        // Every photo failed to decode: nothing to enrol.
        let first = failed.first().cloned().unwrap_or_default();
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("no photo could be read: {first}")));
    }
    let enrolled = batch.iter().filter(|e| e.face.is_some()).count();
    let no_face = batch.len() - enrolled;
    let who = name.clone();
    let id = state
        .with_gallery(move |g| {
            g.add(&batch)?;
            Ok(g.subject_id(&who)?)
        })
        .await?;
    state.loaded(true).await?;
    let counts = json!({ "photos": enrolled + no_face + already + failed.len(), "enrolled": enrolled, "already_enrolled": already, "no_face": no_face, "failed": failed.len() });
    state.audit(&caller, "enrol", counts, id.into_iter().collect()).await?;
    Ok(Json(json!({ "subject": name, "enrolled": enrolled, "already_enrolled": already, "no_face": no_face, "failed": failed })))
}

pub async fn forget(AxumState(state): St, Extension(caller): Extension<Caller>, UrlPath(name): UrlPath<String>) -> ApiResult<Json<Value>> {
    let who = name.clone();
    let erasure = state.with_gallery(move |g| Ok(g.forget(&who)?)).await?;
    let Some(erasure) = erasure else {
        return Err(ApiError::not_found(format!("no subject named {name:?}; nothing erased")));
    };
    state.loaded(true).await?;
    let counts = json!({ "templates": erasure.templates, "photos": erasure.photos });
    state.audit(&caller, "forget", counts, vec![erasure.subject_id.clone()]).await?;
    Ok(Json(json!({ "erased": name, "templates": erasure.templates, "photos": erasure.photos, "subject_id": erasure.subject_id })))
}

#[derive(Deserialize)]
pub struct ConsentBody {
    subject: String,
    basis: String,
    purpose: String,
    evidence: Option<String>,
    expires: Option<String>,
}

pub async fn add_consent(AxumState(state): St, Extension(caller): Extension<Caller>, request: Request) -> ApiResult<Json<Value>> {
    let is_json = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send the consent record as application/json"));
    }
    let bytes = axum::body::to_bytes(request.into_body(), 64 << 10).await.map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "consent record above 64 KB"))?;
    let body: ConsentBody = serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("consent record: {e}")))?;
    let subject = body.subject.trim().to_string();
    if subject.is_empty() {
        return Err(ApiError::bad_request("consent record: `subject` is empty"));
    }
    let input = ConsentInput {
        basis: body.basis,
        purpose: body.purpose.clone(),
        evidence: body.evidence.filter(|e| !e.trim().is_empty()),
        recorded_by: caller.actor(),
        expires: body.expires.filter(|e| !e.trim().is_empty()),
    };
    let who = subject.clone();
    let id = state.with_gallery(move |g| Ok(g.add_consent(&who, &input)?)).await?;
    let purposeful = Caller { purpose: caller.purpose.clone().or(Some(body.purpose)), ..caller };
    state.audit(&purposeful, "consent-add", json!({ "records": 1 }), vec![id.clone()]).await?;
    Ok(Json(json!({ "subject": subject, "subject_id": id, "recorded": true })))
}

pub async fn withdraw_consent(AxumState(state): St, Extension(caller): Extension<Caller>, UrlPath(name): UrlPath<String>) -> ApiResult<Json<Value>> {
    let who = name.clone();
    let (withdrawn, id) = state.with_gallery(move |g| Ok((g.withdraw_consent(&who)?, g.subject_id(&who)?))).await?;
    if withdrawn == 0 {
        return Err(ApiError::not_found(format!("{name:?} has no active consent record to withdraw")));
    }
    state.loaded(true).await?;
    state.audit(&caller, "consent-withdraw", json!({ "records": withdrawn }), id.into_iter().collect()).await?;
    Ok(Json(json!({ "subject": name, "withdrawn": withdrawn })))
}

pub async fn audit(AxumState(state): St, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let reader = Arc::clone(&state);
    let entries = tokio::task::spawn_blocking(move || reader.audit.entries())
        .await
        .map_err(|_| ApiError::internal("audit task failed"))?
        .map_err(|e| ApiError::internal(format!("could not read the audit trail: {e}")))?;
    state.audit(&caller, "audit-export", json!({ "entries": entries.len() }), Vec::new()).await?;
    Ok(Json(json!({ "entries": entries })))
}
