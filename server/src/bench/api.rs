//! The JSON API's side of logging in on behalf, with bearer tokens only (a frontend
//! without cookies): `api_switch` (Kuroco's `alias_login` then `alias_logout`) and
//! `one_click` (a support engineer's one-click login link: created, opened, used, and
//! a guessed one refused).

use std::sync::{Arc, Mutex};

use reqwest::Client;

use super::{
    client,
    meter::{drive, Outcome},
    report::Row,
    scenarios::{member_and_product, Shared, SWITCHES_AT_ONCE},
    Bench,
};

/// A worker of the API scenarios: a client without cookies and the actor's current
/// bearer token (each `alias_logout` hands out a new one).
#[derive(Clone)]
struct ApiWorker {
    client: Client,
    shared: Arc<Shared>,
    token: Arc<Mutex<String>>,
}

impl ApiWorker {
    fn token(&self) -> String {
        self.token.lock().expect("not poisoned").clone()
    }

    fn set_token(&self, token: String) {
        *self.token.lock().expect("not poisoned") = token;
    }
}

/// `count` workers, each with a bearer token of its own for the actor.
async fn actor_workers(bench: &Bench, member_id: i64, count: usize) -> Result<Vec<ApiWorker>, String> {
    let shared = Shared::new(bench, member_id, 0);
    let mut workers = Vec::with_capacity(count);
    for _ in 0..count {
        let client = client::bare_client();
        let signed_in = client::sign_in(&client, &bench.target, &bench.actor, &bench.password)
            .await
            .map_err(|error| format!("signing in as {} failed: {error}", bench.actor))?;
        workers.push(ApiWorker {
            client,
            shared: shared.clone(),
            token: Arc::new(Mutex::new(signed_in.token)),
        });
    }
    Ok(workers)
}

/// `api_switch`: `POST /api/v1/alias_login` (the actor's password again, a reason)
/// then `POST /api/v1/alias_logout` with the member's token, timed as one operation
/// of two requests; the actor's fresh token serves the next one.
pub async fn api_switch(bench: &Bench) -> Result<Vec<Row>, String> {
    let (member_id, _) = member_and_product(bench).await?;
    let count = bench.budget.connections.min(SWITCHES_AT_ONCE);
    let workers = actor_workers(bench, member_id, count).await?;
    let row = drive("api_switch", &bench.budget, workers, |worker| async move {
        let bench = &worker.shared.bench;
        let mut outcome = Outcome::default();
        let login = client::alias_login(
            &worker.client,
            &bench.target,
            &worker.token(),
            worker.shared.member_id,
            &bench.password,
        )
        .await;
        let Some(member_token) = outcome.add(login) else {
            return outcome;
        };
        let logout = client::alias_logout(&worker.client, &bench.target, &member_token).await;
        match outcome.add(logout) {
            Some(token) => worker.set_token(token),
            // The actor's token ended with alias_login: sign in again for the next one.
            None => {
                let again =
                    client::sign_in(&worker.client, &bench.target, &bench.actor, &bench.password).await;
                if let Some(signed_in) = outcome.add(again) {
                    worker.set_token(signed_in.token);
                }
            }
        }
        outcome
    })
    .await;
    Ok(vec![row])
}

/// `one_click`: the actor creates a one-click link for the member (`POST
/// /api/v1/members/{id}/one_click_links`, bearer), a new browser opens it (`GET`, the
/// confirmation page) and continues (`POST`, 303: the link is used, the member signed
/// in), and a guessed link is refused (`POST`, 404). One operation of four requests.
pub async fn one_click(bench: &Bench) -> Result<Vec<Row>, String> {
    let (member_id, _) = member_and_product(bench).await?;
    // A member has at most 20 outstanding links: a few workers keep far below it.
    let count = bench.budget.connections.min(SWITCHES_AT_ONCE);
    let workers = actor_workers(bench, member_id, count).await?;
    let row = drive("one_click", &bench.budget, workers, |worker| async move {
        let (bench, member_id) = (&worker.shared.bench, worker.shared.member_id);
        let target = &bench.target;
        let mut outcome = Outcome::default();
        let created = client::create_link(&worker.client, target, &worker.token(), member_id).await;
        let Some(path) = outcome.add(created) else {
            return outcome;
        };
        let hidden = |error: String| error.replace(&path, "/one-click/{id}/{token}");
        let opened = client::page(&worker.client, target, &path).await;
        outcome.add(opened.map(drop).map_err(hidden));
        outcome.add(client::continue_link(&worker.client, target, &path, 303).await);
        let token = app::session::token::Token::generate();
        let guess = format!("/one-click/{member_id}/{}", token.expose());
        outcome.add(client::continue_link(&worker.client, target, &guess, 404).await);
        outcome
    })
    .await;
    Ok(vec![row])
}
