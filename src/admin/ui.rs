//! The admin console under `/admin`: the files of `static/`, embedded in the binary.
//!
//! The console is a single page (hash routing), so any path without a file extension
//! answers the index; a missing asset (a path with an extension) and anything under
//! `/admin/api/` that no route took are 404s. Responses carry a policy stricter than the
//! site's (`http::headers` keeps a policy a response brings), `Cache-Control: no-cache`
//! and an ETag, so a new binary's files are picked up at once and unchanged ones cost a 304.

use std::borrow::Cow;
use std::path::PathBuf;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{async_trait, get};
use rust_embed::RustEmbed;

/// The console's policy: scripts, styles and fetches from this origin only, no plugins,
/// no frames, no inline code. `img-src data:` is uPlot's legend markers.
pub const ADMIN_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// The request's `If-None-Match`, if any.
pub struct IfNoneMatch(Option<String>);

#[async_trait]
impl<'r> FromRequest<'r> for IfNoneMatch {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(IfNoneMatch(
            req.headers().get_one("If-None-Match").map(str::to_owned),
        ))
    }
}

/// An embedded file, or a 304 when the client's copy is current.
pub struct Asset {
    content_type: ContentType,
    etag: String,
    body: Option<Cow<'static, [u8]>>,
}

impl<'r> Responder<'r, 'static> for Asset {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.header(self.content_type)
            .header(Header::new("Content-Security-Policy", ADMIN_CSP))
            .header(Header::new("Cache-Control", "no-cache"))
            .header(Header::new("ETag", self.etag));
        match self.body {
            Some(body) => res.sized_body(body.len(), std::io::Cursor::new(body)),
            None => res.status(Status::NotModified),
        };
        Ok(res.finalize())
    }
}

/// The embedded file at `path`, answered against the client's `If-None-Match`.
fn asset(path: &str, if_none_match: &IfNoneMatch) -> Option<Asset> {
    let file = Assets::get(path)?;
    let content_type = path
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = if_none_match
        .0
        .as_deref()
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    Some(Asset {
        content_type,
        etag,
        body: (!fresh).then_some(file.data),
    })
}

/// Whether `path` (under `/admin/`) is the console's own route rather than a file or an API call.
fn is_page_route(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or(path);
    !(path == "api" || path.starts_with("api/") || last.contains('.'))
}

#[get("/")]
pub fn ui_index(if_none_match: IfNoneMatch) -> Option<Asset> {
    asset("index.html", &if_none_match)
}

/// A file of the console, or the index for one of its routes.
#[get("/<path..>", rank = 2)]
pub fn ui_asset(path: PathBuf, if_none_match: IfNoneMatch) -> Option<Asset> {
    let path = path.to_str()?;
    asset(path, &if_none_match).or_else(|| {
        is_page_route(path)
            .then(|| asset("index.html", &if_none_match))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// `(file, sha256)` of each row of `static/vendor/README.md`'s table.
    fn listed_vendor_files() -> Vec<(String, String)> {
        let readme = Assets::get("vendor/README.md").expect("static/vendor/README.md");
        let text = std::str::from_utf8(&readme.data).expect("UTF-8 README");
        text.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| file"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_owned(), cells[cells.len() - 2].to_owned())
            })
            .collect()
    }

    #[test]
    fn vendored_files_match_their_pinned_sha256() {
        let listed = listed_vendor_files();
        assert!(listed.len() >= 3, "{listed:?}");
        for (file, sha) in &listed {
            let data = Assets::get(&format!("vendor/{file}"))
                .unwrap_or_else(|| panic!("vendor/{file} is listed but missing"));
            assert_eq!(
                &hex::encode(Sha256::digest(&data.data)),
                sha,
                "vendor/{file}"
            );
        }
        for path in Assets::iter().filter(|p| p.starts_with("vendor/")) {
            let name = &path["vendor/".len()..];
            assert!(
                name == "README.md" || listed.iter().any(|(f, _)| f == name),
                "{path} is not listed in static/vendor/README.md"
            );
        }
    }

    /// Inline code that the policy would block: script bodies, style blocks and
    /// attributes, inline event handlers, `javascript:` URLs.
    fn inline_code() -> regex::Regex {
        regex::Regex::new(
            r#"(?is)<script\b[^>]*>\s*[^<\s]|<style\b|\sstyle\s*=|\son[a-z]+\s*=\s*["']|javascript:"#,
        )
        .expect("regex")
    }

    /// Ways of handing text to the DOM as HTML or code.
    fn html_sinks() -> regex::Regex {
        regex::Regex::new(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|dangerouslySetInnerHTML|\beval\(|new Function",
        )
        .expect("regex")
    }

    #[test]
    fn the_scan_finds_inline_code_and_sinks() {
        for bad in [
            "<script>alert(1)</script>",
            "<style>p{}</style>",
            r#"<p style="color:red">"#,
            r#"<a onclick="x()">"#,
            "<a href='javascript:x'>",
        ] {
            assert!(inline_code().is_match(bad), "{bad}");
        }
        for good in [
            r#"<script type="module" src="/admin/js/main.js"></script>"#,
            "html`<button onClick=${go}>`",
            "let onSignedOut = () => {};",
        ] {
            assert!(!inline_code().is_match(good), "{good}");
        }
        assert!(html_sinks().is_match("el.innerHTML = name"));
    }

    /// Our own files (not the vendored ones) carry no inline code, which the policy would
    /// block, and never hand user data to the DOM as HTML.
    #[test]
    fn console_files_have_no_inline_code_nor_html_sinks() {
        let (inline, sinks) = (inline_code(), html_sinks());
        let mut checked = 0;
        for path in Assets::iter().filter(|p| !p.starts_with("vendor/")) {
            let data = Assets::get(&path).expect("listed asset");
            let text = String::from_utf8_lossy(&data.data);
            if let Some(m) = inline.find(&text) {
                panic!("inline code in static/{path}: {:?}", m.as_str());
            }
            if path.ends_with(".js")
                && let Some(m) = sinks.find(&text)
            {
                panic!("HTML sink in static/{path}: {:?}", m.as_str());
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} console files");
    }

    fn client() -> rocket::local::blocking::Client {
        let rocket = rocket::build().mount("/admin", rocket::routes![ui_index, ui_asset]);
        rocket::local::blocking::Client::untracked(rocket).expect("rocket")
    }

    #[test]
    fn pages_carry_the_strict_policy_no_cache_and_an_etag_that_answers_304() {
        let client = client();
        for path in [
            "/admin",
            "/admin/",
            "/admin/users/0190-abc",
            "/admin/js/main.js",
        ] {
            let res = client.get(path).dispatch();
            assert_eq!(res.status(), Status::Ok, "{path}");
            let headers = res.headers();
            assert_eq!(headers.get_one("Content-Security-Policy"), Some(ADMIN_CSP));
            assert_eq!(headers.get_one("Cache-Control"), Some("no-cache"));
            let etag = headers.get_one("ETag").expect("an ETag").to_owned();
            let again = client
                .get(path)
                .header(Header::new("If-None-Match", etag.clone()))
                .dispatch();
            assert_eq!(again.status(), Status::NotModified, "{path}");
            assert_eq!(again.headers().get_one("ETag"), Some(etag.as_str()));
            let stale = client
                .get(path)
                .header(Header::new("If-None-Match", "\"stale\""))
                .dispatch();
            assert_eq!(stale.status(), Status::Ok, "{path}");
        }
        let script = client.get("/admin/js/main.js").dispatch();
        assert_eq!(script.content_type(), Some(ContentType::JavaScript));
    }

    #[test]
    fn missing_files_and_unknown_api_paths_are_404_not_the_index() {
        let client = client();
        for path in [
            "/admin/js/missing.js",
            "/admin/favicon.ico",
            "/admin/api/nothing",
            "/admin/api",
        ] {
            assert_eq!(
                client.get(path).dispatch().status(),
                Status::NotFound,
                "{path}"
            );
        }
        let deep = client
            .get("/admin/users/abc")
            .dispatch()
            .into_string()
            .unwrap_or_default();
        assert!(deep.contains("/admin/js/main.js"), "{deep}");
    }

    #[test]
    fn page_routes_are_told_from_files_and_api_paths() {
        assert!(is_page_route("users"));
        assert!(is_page_route("users/0190-abc"));
        assert!(!is_page_route("api"));
        assert!(!is_page_route("api/users"));
        assert!(!is_page_route("js/missing.js"));
        assert!(!is_page_route("favicon.ico"));
    }
}
