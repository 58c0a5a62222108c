//! The OpenAPI document of every route, served at `/api/openapi.json` with a docs page at `/api/docs`.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, RefOr, Response, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

use crate::http::error;
use crate::platform::config::Settings;

#[derive(OpenApi)]
#[openapi(
    info(title = "audiostudio API", description = "Accounts, tokens and billing of the audiostudio backend. Errors are application/problem+json (RFC 9457)."),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts, sessions and profiles"),
        (name = "admin", description = "Operator endpoints; admin role required"),
        (name = "tokens", description = "Balance, ledger, spends, holds and grants; mutating calls accept Idempotency-Key"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// The whole document: the shared parts above, each feature's paths, and the rules that
/// follow `settings` (see [`super::openapi_rules`]).
pub fn document(settings: &Settings) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::accounts::ApiDoc::openapi());
    doc.merge(crate::admin::ApiDoc::openapi());
    doc.merge(crate::tokens::ApiDoc::openapi());
    doc.merge(crate::health::ApiDoc::openapi());
    doc.merge(crate::http::metrics::ApiDoc::openapi());
    doc.merge(crate::billing::ApiDoc::openapi());
    doc.merge(crate::webhooks::ApiDoc::openapi());
    // After the merge: a modifier of `ApiDoc` would see none of the features' paths.
    EdgeAnswers.modify(&mut doc);
    super::openapi_rules::apply(&mut doc, settings);
    doc
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The answers of the shared machinery, added to every operation by rule (an operation's own
/// annotation wins where it documents the same status):
/// - a request body: 400 (malformed JSON), 413 (over the JSON limit), 415 (not JSON) and
///   422 (a field of the wrong type or invalid);
/// - an `Idempotency-Key` header: its constraint (1 to 255 visible ASCII characters) and
///   400 for a key that breaks it, 422 for a key used before with another request;
/// - query parameters: 422 (a value out of bounds, or a parameter repeated);
/// - bearer security: 401; under `/api/admin`: 403 as well;
/// - every operation: 429 (each route class has a limit and the global per-IP ceiling
///   covers every route), with `RateLimit`, `RateLimit-Policy` and `Retry-After`.
struct EdgeAnswers;

impl Modify for EdgeAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let admin = path.starts_with("/api/admin");
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                edge_answers(operation, admin);
            }
        }
    }
}

fn edge_answers(operation: &mut Operation, admin: bool) {
    let mut add = Vec::new();
    if operation.request_body.is_some() {
        add.extend([
            (400, "Malformed JSON"),
            (413, "Body too large"),
            (415, "The body is not JSON"),
            (422, "Invalid fields"),
        ]);
    }
    let params = operation.parameters.iter_mut().flatten();
    for param in params.filter_map(|p| match p {
        RefOr::T(p) => Some(p),
        RefOr::Ref(_) => None,
    }) {
        if param.parameter_in == ParameterIn::Header && param.name == "Idempotency-Key" {
            param.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    // HTTP drops the spaces and tabs around a field value (RFC 9110 §5.5).
                    .pattern(Some("^[!-~]+[ \\t]*$"))
                    .into(),
            );
            add.push((400, "Malformed JSON or a bad Idempotency-Key header"));
            add.push((
                422,
                "Invalid fields, or the Idempotency-Key was used with another request",
            ));
        }
        if param.parameter_in == ParameterIn::Query {
            add.push((422, "Invalid or repeated query parameters"));
        }
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        add.push((401, "Missing, invalid or expired access token"));
        if admin {
            add.push((403, "The admin role is required"));
        }
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in add {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description).into());
    }
    responses
        .entry("429".into())
        .or_insert_with(|| rate_limited().into());
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                ))))
                .build(),
        )
        .build()
}

fn rate_limited() -> Response {
    let header = |description: &str| {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    };
    let mut response = problem("Rate limited: wait `Retry-After` seconds");
    response.headers.insert(
        "RateLimit".into(),
        header(
            "The limit, what is left and when it resets, e.g. `limit=20, remaining=0, reset=42`",
        )
        .into(),
    );
    response.headers.insert(
        "RateLimit-Policy".into(),
        header("The policy of this route class, e.g. `20;w=60`").into(),
    );
    response.headers.insert(
        "Retry-After".into(),
        header("Seconds until a retry can succeed").into(),
    );
    response
}

/// The document as served: serialized once at start. (utoipa-swagger-ui's own route keeps
/// the document as a tree, clones it for each request, and Rocket keeps several copies
/// of its handler: about 7 MiB of an idle server's heap.)
pub struct Served(String);

impl Served {
    pub fn new(document: &utoipa::openapi::OpenApi) -> anyhow::Result<Served> {
        Ok(Served(serde_json::to_string(document)?))
    }
}

/// `GET /api/openapi.json`.
#[rocket::get("/api/openapi.json")]
pub fn serve(served: &rocket::State<Served>) -> (rocket::http::ContentType, &str) {
    (rocket::http::ContentType::JSON, &served.0)
}
