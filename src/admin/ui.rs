//! The admin console under `/admin`: the files of `static/`, embedded in the binary.

use std::borrow::Cow;
use std::path::PathBuf;

use rocket::get;
use rocket::http::ContentType;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

fn asset(path: &str) -> Option<(ContentType, Cow<'static, [u8]>)> {
    let file = Assets::get(path)?;
    let content_type = path
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    Some((content_type, file.data))
}

#[get("/")]
pub fn ui_index() -> Option<(ContentType, Cow<'static, [u8]>)> {
    asset("index.html")
}

/// Any other path is the console's own route: the index answers it.
#[get("/<path..>", rank = 2)]
pub fn ui_asset(path: PathBuf) -> Option<(ContentType, Cow<'static, [u8]>)> {
    asset(path.to_str()?).or_else(|| asset("index.html"))
}
