//! The admin backup routes: an online backup taken, verified, listed and downloaded whole
//! with a Bearer token or the console cookie, audited; bad names, other users, cross-site
//! console requests and a second concurrent backup refused without writing anything.

use std::path::PathBuf;

use rocket::http::{Header, Status};
use serde_json::json;

use crate::admin_helpers::*;
use crate::helpers::*;

fn backups_dir(app: &TestApp) -> PathBuf {
    app.dir.path().join("backups")
}

fn files_in_backups(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(backups_dir(app))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A raw GET (the body is a database, not text): (status, headers, bytes).
async fn download(
    app: &TestApp,
    path: &str,
    auth: Header<'static>,
) -> (Status, Vec<(String, String)>, Vec<u8>) {
    let response = app
        .client
        .get(path.to_owned())
        .header(auth)
        .dispatch()
        .await;
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|h| (h.name().as_str().to_ascii_lowercase(), h.value().to_owned()))
        .collect();
    (
        status,
        headers,
        response.into_bytes().await.unwrap_or_default(),
    )
}

fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

fn cookie(value: &str) -> Header<'static> {
    Header::new("Cookie", format!("audiostudio_admin={value}"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[rocket::async_test]
async fn an_admin_backup_is_verified_listed_downloaded_whole_and_audited() {
    let app = spawn_app().await;
    let (session, token, root) = console_admin(&app).await;
    verified_user(&app, "ada@example.com").await;

    let first = app
        .post("/api/admin/backups", json!({}), Some(&token))
        .await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    let name = first.body["name"].as_str().unwrap().to_owned();
    assert!(
        name.len() == "20261203T120000Z.db".len() && name.ends_with("Z.db"),
        "{name}"
    );
    assert_eq!(first.body["verified"], true, "{}", first.body);
    let verification = first.body["verification"].as_str().unwrap();
    assert!(
        verification.contains("integrity ok") && verification.contains("ledger consistent"),
        "{verification}"
    );
    let on_disk = std::fs::read(backups_dir(&app).join(&name)).unwrap();
    assert_eq!(first.body["size_bytes"], on_disk.len() as u64);
    let (action, actor, target, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), actor.as_deref(), target.as_deref()),
        (
            "admin.backup_created",
            Some(root.as_str()),
            Some(name.as_str())
        )
    );
    assert_eq!(details["verified"], true);

    // From the console, in the same second: a second name, listed first.
    let second = cpost(&app, "/admin/api/backups", json!({}), &session).await;
    assert_eq!(second.status, Status::Created, "{}", second.body);
    let second_name = second.body["name"].as_str().unwrap().to_owned();
    assert_eq!(second_name, name.replace(".db", "-2.db"));
    let listed = cget(&app, "/admin/api/backups", &session).await;
    assert_eq!(listed.status, Status::Ok, "{}", listed.body);
    let names: Vec<&str> = listed.body["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [second_name.as_str(), name.as_str()]);
    assert_eq!(
        listed.body["backups"][1]["size_bytes"],
        on_disk.len() as u64
    );

    // Downloaded whole, as an attachment, with either credential; a valid backup.
    for (path, auth) in [
        (format!("/api/admin/backups/{name}"), bearer(&token)),
        (format!("/admin/api/backups/{name}"), cookie(&session)),
    ] {
        let (status, headers, bytes) = download(&app, &path, auth).await;
        assert_eq!(status, Status::Ok, "{path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/vnd.sqlite3")
        );
        assert_eq!(
            header(&headers, "content-disposition"),
            Some(format!("attachment; filename=\"{name}\"").as_str())
        );
        assert!(
            bytes == on_disk,
            "{path}: the download differs from the file"
        );
        let (action, actor, target, _) = last_audit(&app);
        assert_eq!(
            (action.as_str(), actor.as_deref(), target.as_deref()),
            (
                "admin.backup_downloaded",
                Some(root.as_str()),
                Some(name.as_str())
            )
        );
    }
    let copy = app.dir.path().join("downloaded.db");
    std::fs::write(&copy, &on_disk).unwrap();
    let verified =
        audiostudio::platform::backup::verify(&copy, &audiostudio::tokens::ops::ledger_verdict)
            .unwrap();
    assert_eq!(verified.ledger, "ledger consistent for 2 users");
}

#[rocket::async_test]
async fn backup_names_are_strict_and_only_admins_reach_the_routes() {
    let app = spawn_app().await;
    let (session, token, _) = console_admin(&app).await;
    let (user_token, _) = verified_user(&app, "ada@example.com").await;
    let made = app
        .post("/api/admin/backups", json!({}), Some(&token))
        .await;
    assert_eq!(made.status, Status::Created, "{}", made.body);
    let name = made.body["name"].as_str().unwrap().to_owned();
    // A link in the backups dir to the live database is no backup.
    std::os::unix::fs::symlink(
        app.dir.path().join("audiostudio.db"),
        backups_dir(&app).join("live.db"),
    )
    .unwrap();
    std::fs::write(backups_dir(&app).join(".hidden.db"), b"x").unwrap();
    let long = format!("{}.db", "a".repeat(200));
    for bad in [
        "..%2Faudiostudio.db",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "audiostudio.db",
        "live.db",
        ".hidden.db",
        "nosuch.db",
        "jwt_secret",
        long.as_str(),
        "a%00.db",
    ] {
        let path = format!("/api/admin/backups/{bad}");
        let reply = app.get(&path, Some(&token)).await;
        assert_eq!(reply.status.code, 404, "{bad}: {}", reply.body);
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/problem+json"),
            "{bad}"
        );
    }
    let listed = app.get("/api/admin/backups", Some(&token)).await;
    assert_eq!(listed.body["backups"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["backups"][0]["name"], name.as_str());

    let path = format!("/api/admin/backups/{name}");
    app.get(&path, Some(&user_token)).await.assert_problem(403);
    app.get(&path, None).await.assert_problem(401);
    app.get("/api/admin/backups", Some(&user_token))
        .await
        .assert_problem(403);
    app.post("/api/admin/backups", json!({}), Some(&user_token))
        .await
        .assert_problem(403);
    app.post("/api/admin/backups", json!({}), None)
        .await
        .assert_problem(401);
    app.post(
        "/api/admin/backups",
        json!({ "path": "/tmp/x.db" }),
        Some(&token),
    )
    .await
    .assert_problem(422);
    // The console's cookie mutates only from a same-origin JSON request.
    for headers in [
        &[][..],
        &[("Origin", "https://evil.example.net")][..],
        &[("Origin", ORIGIN), ("Content-Type", "text/plain")][..],
    ] {
        console_send(
            &app,
            "POST",
            "/admin/api/backups",
            Some("{}"),
            Some(&session),
            headers,
        )
        .await
        .assert_problem(403);
    }
    let mut expected = vec![".hidden.db".to_owned(), name, "live.db".to_owned()];
    expected.sort();
    assert_eq!(files_in_backups(&app), expected, "nothing more was written");
}

#[rocket::async_test]
async fn a_second_backup_while_one_runs_is_refused_with_409() {
    let app = spawn_app().await;
    let (_, token, _) = console_admin(&app).await;
    let running =
        audiostudio::platform::backup::Running::begin(app.dir.path()).expect("no backup runs yet");
    app.post("/api/admin/backups", json!({}), Some(&token))
        .await
        .assert_problem(409);
    assert!(files_in_backups(&app).is_empty());
    drop(running);
    let after = app
        .post("/api/admin/backups", json!({}), Some(&token))
        .await;
    assert_eq!(after.status, Status::Created, "{}", after.body);
}
