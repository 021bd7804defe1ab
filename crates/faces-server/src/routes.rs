//! The route table: every route's method, path, access rule, summary and
//! body. The router, the access checks and the OpenAPI document are all
//! built from it, so none of them can miss a route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State as AxumState};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::Router;
use faces_core::gallery::api_keys::{ApiKey, Refusal, Scope};
use serde_json::{json, Value};

use crate::{api, upload};
use crate::error::ApiError;
use crate::State;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: liveness and the web page's static files.
    Public,
    /// Any valid key.
    AnyKey,
    /// A key with this scope (or admin).
    Scope(Scope),
}

/// What a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// One photo: multipart field `image`, or the raw body.
    Image,
    /// Two photos: multipart fields `a` and `b`.
    TwoImages,
    /// Multipart: `name` and one or more `image` files.
    Enrolment,
    /// JSON: a consent record.
    Consent,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub body: Body,
    /// Media type of a successful answer.
    pub returns: &'static str,
    handler: Handler,
}

#[derive(Debug, Clone, Copy)]
enum Handler {
    Health,
    Ready,
    OpenApi,
    Metrics,
    Page,
    Script,
    Style,
    Detect,
    Compare,
    Identify,
    ListSubjects,
    Enrol,
    Forget,
    AddConsent,
    WithdrawConsent,
    Audit,
}

const JSON: &str = "application/json";

macro_rules! route {
    ($method:literal, $path:literal, $access:expr, $body:expr, $returns:expr, $handler:ident, $summary:literal) => {
        Route { method: $method, path: $path, access: $access, summary: $summary, body: $body, returns: $returns, handler: Handler::$handler }
    };
}

pub const ROUTES: &[Route] = &[
    route!("GET", "/health", Access::Public, Body::None, JSON, Health, "Liveness: the process answers."),
    route!("GET", "/ready", Access::AnyKey, Body::None, JSON, Ready, "Readiness: models loaded, gallery open; queue state."),
    route!("GET", "/openapi.json", Access::AnyKey, Body::None, JSON, OpenApi, "This document."),
    route!("GET", "/metrics", Access::Scope(Scope::Admin), Body::None, "text/plain", Metrics, "Prometheus metrics: requests, latency histograms, faces per second. No personal data."),
    route!("GET", "/", Access::Public, Body::None, "text/html", Page, "The web page (log in with an API key)."),
    route!("GET", "/app.js", Access::Public, Body::None, "text/javascript", Script, "The web page's script."),
    route!("GET", "/style.css", Access::Public, Body::None, "text/css", Style, "The web page's style sheet."),
    route!("POST", "/v1/detect", Access::Scope(Scope::Detect), Body::Image, JSON, Detect, "Every face in a photo: box, landmarks, score."),
    route!("POST", "/v1/compare", Access::Scope(Scope::Identify), Body::TwoImages, JSON, Compare, "Similarity of the main faces of two photos, and the decision at the gallery's threshold."),
    route!("POST", "/v1/identify", Access::Scope(Scope::Identify), Body::Image, JSON, Identify, "Names every face in a photo from the gallery (the JSON of `faces identify --json`). Query: top_k, threshold, min_margin, main_face. Header X-Purpose: why (audited)."),
    route!("GET", "/v1/subjects", Access::Scope(Scope::Enrol), Body::None, JSON, ListSubjects, "Subjects with their template and photo counts."),
    route!("POST", "/v1/subjects", Access::Scope(Scope::Enrol), Body::Enrolment, JSON, Enrol, "Enrols photos of a subject who has an active consent record."),
    route!("DELETE", "/v1/subjects/{name}", Access::Scope(Scope::Admin), Body::None, JSON, Forget, "Erases a subject completely (as `faces forget`)."),
    route!("POST", "/v1/consent", Access::Scope(Scope::Enrol), Body::Consent, JSON, AddConsent, "Records a subject's consent or other legal basis."),
    route!("POST", "/v1/consent/{name}/withdraw", Access::Scope(Scope::Enrol), Body::None, JSON, WithdrawConsent, "Withdraws a subject's consent: unmatchable at once."),
    route!("GET", "/v1/audit", Access::Scope(Scope::Admin), Body::None, JSON, Audit, "The audit trail's entries (as `faces audit export`)."),
];

fn method_router(route: &Route) -> MethodRouter<Arc<State>> {
    use Handler as H;
    match route.handler {
        H::Health => routing::get(api::health),
        H::Ready => routing::get(api::ready),
        H::OpenApi => routing::get(api::openapi),
        H::Metrics => routing::get(api::metrics),
        H::Page => routing::get(api::page),
        H::Script => routing::get(api::script),
        H::Style => routing::get(api::style),
        H::Detect => routing::post(api::detect),
        H::Compare => routing::post(api::compare),
        H::Identify => routing::post(api::identify),
        H::ListSubjects => routing::get(api::list_subjects),
        H::Enrol => routing::post(api::enrol),
        H::Forget => routing::delete(api::forget),
        H::AddConsent => routing::post(api::add_consent),
        H::WithdrawConsent => routing::post(api::withdraw_consent),
        H::Audit => routing::get(api::audit),
    }
}

/// The service: every route of the table behind its access check, then
/// metrics and a JSON 404 for anything else.
pub fn router(state: Arc<State>) -> Router {
    let mut router: Router<Arc<State>> = Router::new();
    // Routes sharing a path share one MethodRouter.
    let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let mut methods: Option<MethodRouter<Arc<State>>> = None;
        for route in ROUTES.iter().filter(|r| r.path == path) {
            let guarded = method_router(route).route_layer(middleware::from_fn_with_state((Arc::clone(&state), route.access), authorise));
            methods = Some(match methods {
                Some(m) => m.merge(guarded),
                None => guarded,
            });
        }
        if let Some(m) = methods {
            router = router.route(path, m);
        }
    }
    router
        .fallback(|| async { ApiError::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route; see /openapi.json") })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), measure))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// The caller of a request, as the handlers and the audit trail see it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: Option<ApiKey>,
    /// The `X-Purpose` header: why the request is made.
    pub purpose: Option<String>,
}

impl Caller {
    /// The actor in the audit trail: `key:ID`.
    pub fn actor(&self) -> String {
        self.key.as_ref().map_or_else(|| "anonymous".to_string(), |k| format!("key:{}", k.id))
    }
}

async fn authorise(AxumState((state, access)): AxumState<(Arc<State>, Access)>, mut request: Request, next: Next) -> Response {
    let purpose = request.headers().get("x-purpose").and_then(|v| v.to_str().ok()).map(str::trim).filter(|p| !p.is_empty()).map(String::from);
    if access == Access::Public {
        request.extensions_mut().insert(Caller { key: None, purpose });
        return next.run(request).await;
    }
    let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).map(String::from);
    let Some(presented) = presented else {
        return refuse(request, &state, unauthorised("no API key: send `Authorization: Bearer KEY` (make one with `faces keys create`)")).await;
    };
    let checked = {
        let state = Arc::clone(&state);
        tokio::task::spawn_blocking(move || state.gallery.lock().map_err(|_| ()).and_then(|g| g.check_api_key(&presented).map_err(|_| ()))).await
    };
    let key = match checked {
        Ok(Ok(Ok(key))) => key,
        Ok(Ok(Err(Refusal::Revoked))) => return refuse(request, &state, unauthorised("this API key was revoked")).await,
        Ok(Ok(Err(Refusal::Invalid))) => return refuse(request, &state, unauthorised("invalid API key")).await,
        _ => return ApiError::internal("could not check the API key").into_response(),
    };
    if let Access::Scope(scope) = access {
        if !key.allows(scope) {
            let message = format!("this key lacks the `{}` scope (it has: {})", scope.name(), key.scopes.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "));
            return refuse(request, &state, ApiError::new(StatusCode::FORBIDDEN, message).into_response()).await;
        }
    }
    request.extensions_mut().insert(Caller { key: Some(key), purpose });
    next.run(request).await
}

/// Answers a refused request once its body is read (see [`upload::discard`]).
async fn refuse(request: Request, state: &State, response: Response) -> Response {
    upload::discard(request, state.config.max_body_bytes).await;
    response
}

fn unauthorised(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
    response
}

async fn measure(AxumState(state): AxumState<Arc<State>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.record(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.to_ascii_lowercase(), operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "faces",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Face detection, identification and enrolment with consent records, erasure and an audit trail. Errors are JSON: {\"error\": \"...\", \"status\": N}."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API key from `faces keys create`." } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "status"], "properties": { "error": { "type": "string" }, "status": { "type": "integer" } } },
                "Consent": {
                    "type": "object",
                    "required": ["subject", "basis", "purpose"],
                    "properties": {
                        "subject": { "type": "string" },
                        "basis": { "type": "string", "description": "`consent` (needs evidence), or another legal basis in words" },
                        "purpose": { "type": "string" },
                        "evidence": { "type": "string", "description": "A reference to the signed form (its id), not the form" },
                        "expires": { "type": "string", "format": "date" }
                    }
                }
            }
        }
    })
}

fn operation(route: &Route) -> Value {
    let id = format!("{}{}", route.method.to_ascii_lowercase(), route.path.replace(['/', '{', '}', '.'], "_"));
    let mut op = json!({
        "operationId": id.trim_end_matches('_'),
        "summary": route.summary,
        "responses": responses(route),
    });
    let security = match route.access {
        Access::Public => json!([]),
        _ => json!([{ "bearer": [] }]),
    };
    op["security"] = security;
    if let Access::Scope(scope) = route.access {
        op["x-scope"] = json!(scope.name());
    }
    let params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if !params.is_empty() {
        op["parameters"] = json!(params);
    }
    if let Some(body) = request_body(route.body) {
        op["requestBody"] = body;
    }
    op
}

fn request_body(body: Body) -> Option<Value> {
    let binary = json!({ "type": "string", "contentMediaType": "application/octet-stream" });
    let form = |properties: Value, required: Value| {
        json!({ "required": true, "content": { "multipart/form-data": { "schema": { "type": "object", "properties": properties, "required": required } } } })
    };
    match body {
        Body::None => None,
        Body::Image => {
            let mut b = form(json!({ "image": binary }), json!(["image"]));
            b["content"]["image/*"] = json!({ "schema": binary });
            Some(b)
        }
        Body::TwoImages => Some(form(json!({ "a": binary, "b": binary }), json!(["a", "b"]))),
        Body::Enrolment => Some(form(json!({ "name": { "type": "string" }, "image": { "type": "array", "items": binary } }), json!(["name", "image"]))),
        Body::Consent => Some(json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Consent" } } } })),
    }
}

fn responses(route: &Route) -> Value {
    let error = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let mut r = serde_json::Map::new();
    r.insert("200".into(), json!({ "description": "OK", "content": { route.returns: {} } }));
    let mut add = |code: &str, description: &str| {
        let mut e = error.clone();
        e["description"] = json!(description);
        r.insert(code.into(), e);
    };
    if route.access != Access::Public {
        add("401", "no, invalid or revoked API key");
    }
    if matches!(route.access, Access::Scope(_)) {
        add("403", "the key lacks the route's scope");
    }
    if route.body != Body::None {
        add("400", "malformed request");
        add("413", "body or image above the limits");
        add("415", "unsupported Content-Type");
    }
    if matches!(route.body, Body::Image | Body::TwoImages | Body::Enrolment) {
        add("422", "not a decodable image (corrupt, truncated or unsupported format)");
        add("503", "queue full or timed out; retry after the Retry-After seconds");
    }
    if route.path.contains('{') {
        add("404", "no such subject");
    }
    Value::Object(r)
}
