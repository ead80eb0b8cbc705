//! The last stage for routes with `static_dir`: serve a file instead of proxying (GET and HEAD), with
//! ETag, Last-Modified, ranges and content types from actix-files. Paths that do not name a file and have
//! no extension fall back to `index.html`, so an SPA's client-side routes (such as its OAuth callback)
//! load the app. Hidden files, encoded separators and symlinks leading out of the directory are refused.

use super::route::Route;
use crate::error::Rejection;
use actix_files::NamedFile;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use std::path::{Path, PathBuf};

/// Maps the path below the route's prefix to a file under `dir`, or `None` when it may not be served.
fn locate(dir: &Path, rest: &str) -> Option<PathBuf> {
    let mut candidate = dir.to_path_buf();
    let mut last = "";
    for raw in rest.split('/').filter(|s| !s.is_empty()) {
        let segment = percent_decode_str(raw).decode_utf8().ok()?;
        if segment.starts_with('.') || segment.contains(['/', '\\', '\0']) {
            return None;
        }
        candidate.push(segment.as_ref());
        last = raw;
    }
    if candidate.is_dir() {
        candidate.push("index.html");
    } else if !candidate.exists() && !last.contains('.') {
        candidate = dir.join("index.html");
    }
    let root = dir.canonicalize().ok()?;
    let resolved = candidate.canonicalize().ok()?;
    (resolved.starts_with(&root) && resolved.is_file()).then_some(resolved)
}

/// Serves the file for the normalised `path` of a static route.
pub async fn serve(route: &Route, dir: &Path, path: &str, req: &HttpRequest) -> Result<HttpResponse, Rejection> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(Rejection::MethodNotAllowed("GET, HEAD".into()));
    }
    let rest = if route.prefix == "/" { path } else { &path[route.prefix.len()..] };
    let file = locate(dir, rest).ok_or(Rejection::FileNotFound)?;
    let named = NamedFile::open_async(&file).await.map_err(|_| Rejection::FileNotFound)?;
    let mut response = named.into_response(req);
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if file.extension().is_some_and(|e| e == "html") {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_inside_the_directory_only() {
        let dir = std::env::temp_dir().join(format!("shroud-static-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "<html>").unwrap();
        std::fs::write(dir.join("assets/app.js"), "js").unwrap();
        std::fs::write(dir.join(".env"), "secret").unwrap();
        let index = dir.canonicalize().unwrap().join("index.html");
        assert_eq!(locate(&dir, "/"), Some(index.clone()));
        assert_eq!(locate(&dir, "/assets/app.js"), Some(dir.canonicalize().unwrap().join("assets/app.js")));
        assert_eq!(locate(&dir, "/callback"), Some(index.clone()), "SPA fallback");
        assert_eq!(locate(&dir, "/missing.js"), None);
        assert_eq!(locate(&dir, "/.env"), None);
        assert_eq!(locate(&dir, "/assets%2Fapp.js"), None);
        assert_eq!(locate(&dir, "/%2e%2e/etc/passwd"), None);
        #[cfg(unix)]
        {
            let _ = std::os::unix::fs::symlink("/etc", dir.join("escape"));
            assert_eq!(locate(&dir, "/escape/hostname"), None, "symlinks may not leave the directory");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
