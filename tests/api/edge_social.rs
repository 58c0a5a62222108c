//! A rejected social claim may be followed by a new one (issue 9, item 7): the rejected
//! row stays with its review, the new claim goes to review again, and a task takes at
//! most three claims per user.

use rocket::http::Status;

use crate::helpers::*;

async fn reject(app: &TestApp, admin: &str, claim_id: &str) {
    let reply = app
        .send(
            "POST",
            &format!("/api/admin/social/{claim_id}/reject"),
            None,
            Some(admin),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
}

async fn state_of(app: &TestApp, token: &str, task: &str) -> (String, Option<String>) {
    let listed = app.get("/api/tokens/social", Some(token)).await;
    let task = listed.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task)
        .unwrap()
        .clone();
    (
        task["state"].as_str().unwrap().to_owned(),
        task["claim_id"].as_str().map(str::to_owned),
    )
}

#[rocket::async_test]
async fn a_rejected_claim_can_be_followed_by_a_new_one_up_to_three_claims() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, _) = admin(&app).await;
    let (ada, ada_id) = verified_user(&app, "ada@example.com").await;

    let first = claim(&app, &ada, "task_tiktok_video", Some("ada")).await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    // While the claim is pending a second one is still refused.
    claim(&app, &ada, "task_tiktok_video", Some("ada"))
        .await
        .assert_problem(409);
    let first_id = first.body["claim"]["id"].as_str().unwrap().to_owned();
    reject(&app, &root, &first_id).await;
    assert_eq!(
        state_of(&app, &ada, "task_tiktok_video").await,
        ("rejected".to_owned(), Some(first_id.clone()))
    );

    let second = claim(&app, &ada, "task_tiktok_video", Some("ada")).await;
    assert_eq!(second.status, Status::Created, "{}", second.body);
    assert_eq!(second.body["claim"]["status"], "pending");
    let second_id = second.body["claim"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);
    assert_eq!(
        state_of(&app, &ada, "task_tiktok_video").await,
        ("pending".to_owned(), Some(second_id.clone()))
    );
    // The rejected claim stays, with its review.
    let statuses: Vec<String> = app.column(&format!(
        "SELECT status FROM social_engagements WHERE user_id = '{ada_id}' AND task_id = 'task_tiktok_video' ORDER BY created_at, id"
    ));
    assert_eq!(statuses, ["rejected", "pending"]);

    reject(&app, &root, &second_id).await;
    let third = claim(&app, &ada, "task_tiktok_video", Some("ada")).await;
    assert_eq!(third.status, Status::Created, "{}", third.body);
    reject(&app, &root, third.body["claim"]["id"].as_str().unwrap()).await;

    let fourth = claim(&app, &ada, "task_tiktok_video", Some("ada")).await;
    fourth.assert_problem(409);
    assert!(
        fourth.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("rejected 3 times"),
        "{}",
        fourth.body
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM social_engagements WHERE user_id = '{ada_id}'"
        )),
        3
    );
}

#[rocket::async_test]
async fn a_rejected_claim_frees_its_handle_and_an_approved_one_still_blocks() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, _) = admin(&app).await;
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;

    // Bob claimed Ada's handle; once that claim is rejected, Ada may use her handle.
    let stolen = claim(&app, &bob, "task_tiktok_video", Some("ada")).await;
    assert_eq!(stolen.status, Status::Created, "{}", stolen.body);
    claim(&app, &ada, "task_tiktok_video", Some("ada"))
        .await
        .assert_problem(409);
    reject(&app, &root, stolen.body["claim"]["id"].as_str().unwrap()).await;
    let own = claim(&app, &ada, "task_tiktok_video", Some("ada")).await;
    assert_eq!(own.status, Status::Created, "{}", own.body);

    // An approved (auto-approved) claim is never claimed twice.
    let x = claim(&app, &ada, "task_x_follow", None).await;
    assert_eq!(x.status, Status::Created, "{}", x.body);
    claim(&app, &ada, "task_x_follow", None)
        .await
        .assert_problem(409);
}
