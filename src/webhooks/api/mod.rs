//! The webhook routes: the signed intake, and its operation by admins.

pub mod receive;
pub mod retry;
pub mod status;

use rocket::request::{FromRequest, Outcome, Request};

use super::handler::Webhooks;

/// The managed [`Webhooks`], if any, for waking the worker.
pub(crate) struct Wakeup(Option<Webhooks>);

impl Wakeup {
    pub(crate) fn wake(&self) {
        if let Some(webhooks) = &self.0 {
            webhooks.wake();
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Wakeup {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Wakeup(req.rocket().state::<Webhooks>().cloned()))
    }
}
